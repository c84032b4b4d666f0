// analytics.js without Segment's CDN: the settings it would fetch from there are given inline, and
// the Segment.io destination's host is Tactful's collection API. The test names the write key and
// the host in `window.tactfulSettings` before this script runs.
//
//   page ──analytics.track()──▶ Segment.io destination ──POST http://<apiHost>/t (text/plain,
//                                                          writeKey in the body)──▶ Tactful
"use strict";

const { writeKey, apiHost } = window.tactfulSettings;

// The visitor's banner choice, as a consent manager would hold it.
const bannerChoice = { analytics: true, personalization: true };

const analytics = AnalyticsNext.AnalyticsBrowser.load(
  {
    writeKey,
    cdnSettings: {
      integrations: { "Segment.io": { apiKey: writeKey, apiHost, protocol: "http" } },
      // No usage metrics to Segment: nothing leaves for another host.
      metrics: { sampleRate: 0 },
    },
  },
  { initialPageview: false },
);

// Every event carries the choice in `context.consent.categoryPreferences`, where Segment's consent
// wrapper puts it; Tactful maps these category names to its purposes.
analytics.addSourceMiddleware(({ payload, next }) => {
  payload.obj.context = { ...payload.obj.context, consent: { categoryPreferences: bannerChoice } };
  next(payload);
});
