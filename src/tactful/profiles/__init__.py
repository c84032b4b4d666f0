"""Profiles: who a subject is and what is stored about them.

    collect ──resolve(anonymous_id, user_id, previous_id)──▶ identity ──▶ subject_id (+ merges)
       │                                                      │ two subjects are one person:
       │                                                      ▼
       │                                                    merge ── identities, traits, computed
       │                                                      │       move to the survivor; the
       │                                                      │       loser stays a tombstone
       ├──apply_traits(identify traits)──▶ traits ── identifiers encrypted with the subject's key,
       │                                              e-mail in the keystore's blind index
       ├──record_event(stored message)───▶ computed ── last seen, event counts, favourite category,
       │                                                lifetime value (incremental, mergeable)
       └──observe(message)───────────────▶ counters ── this session only (memory or Redis)

    rights ──export_subject / erase_subject──▶ every profile row of one subject id
    policy gate ──get_profile──▶ ProfileSnapshot (decrypted), from which a SubjectView is built

`service` is the module other domains import; the others are its parts.
"""
