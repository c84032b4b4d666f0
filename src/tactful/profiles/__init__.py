"""Profiles: who a subject is and what is stored about them.

    collect ──resolve_many(identities of a request)──▶ identity ──▶ subject ids (+ merges)
       │                                                  │ two subjects are one person:
       │                                                  ▼
       │                                                merge ── identities, traits, computed
       │                                                  │       move to the survivor; the
       │                                                  │       loser stays a tombstone
       ├──apply_traits_many(identify traits)──▶ traits ── identifiers encrypted with the subject's
       │                                                   key, e-mail in the keystore's blind index
       ├──record_events(stored messages)─────▶ recording ── computed: last seen, event counts,
       │                                                    favourite category, lifetime value
       └──(after the commit) record(observations)──▶ counters ── this session only (memory or Redis),
                                                              under the subject's refusals' version
    consent.gatekeeper ──SessionAtoms──▶ session ── the catalog's session atoms, one counters read
                                                    when a decision first reads one

    rights ──export_subject / erase_subject──▶ every profile row of one subject id
    policy gate ──get_profile──▶ ProfileSnapshot (decrypted), from which a SubjectView is built

Every batch call equals its items one by one (`resolve`, `apply_traits`, `record_event` are batches
of one). `service` is the module other domains import; the others are its parts.
"""
