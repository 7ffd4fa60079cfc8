// accelbench dashboard: keeps the parts of a page marked `data-live` current.
//
// Each such element names the URL of its fragment (server-rendered, escaped HTML from the
// same code that drew the page); every `data-poll-ms` milliseconds (an attribute of
// <body>) the fragment is fetched again and swapped in, so progress moves without a
// reload. While a fetch fails, the element is marked `data-stale` (drawn faded) and keeps
// what it showed.
"use strict";
(function () {
  const period = Number(document.body.dataset.pollMs) || 2000;
  let busy = false;

  async function refresh(element) {
    try {
      const answer = await fetch(element.dataset.live, { cache: "no-store", credentials: "same-origin" });
      if (!answer.ok) {
        element.dataset.stale = String(answer.status);
        return;
      }
      element.innerHTML = await answer.text();
      delete element.dataset.stale;
    } catch (_) {
      element.dataset.stale = "unreachable";
    }
  }

  async function tick() {
    // One round at a time: a slow server is not asked twice over.
    if (busy) return;
    busy = true;
    try {
      await Promise.all(Array.from(document.querySelectorAll("[data-live]"), refresh));
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } finally {
      busy = false;
    }
  }

  setInterval(tick, period);
})();
