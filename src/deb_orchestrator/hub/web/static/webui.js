// deb-orchestrator's web pages: live updates without a framework (docs/deb-orchestrator.md "Web UI").
// An element with data-watch (a task's or build's API URL) and data-state is followed while its state is not
// final: a task page's log tail (<pre data-log>) is refreshed from the hub about every 1.5 s, sooner when the
// hub's event stream reports a change; when the state changes the page reloads to show the result. Everything
// comes from the hub's database, so it works whichever hub worker answers.
"use strict";
(function () {
  const FINAL = ["closed", "failed", "canceled", "complete", "deleted"];
  const watched = document.querySelector("[data-watch]");
  if (!watched) return;
  const url = watched.dataset.watch;
  const initial = watched.dataset.state;
  if (FINAL.includes(initial)) return;
  const log = document.querySelector("pre[data-log]");
  const status = document.getElementById("live-status");
  let busy = false;
  let timer = null;

  function show(text) { if (status) status.textContent = text; }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const answer = await fetch(url, { headers: { "Accept": "application/json" }, cache: "no-store" });
      if (!answer.ok) { show("live updates paused: the hub answered " + answer.status); return; }
      const data = await answer.json();
      if (log && typeof data.log_tail === "string" && log.textContent !== data.log_tail) {
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.textContent = data.log_tail;
        log.hidden = data.log_tail === "";
        const empty = document.getElementById("log-empty");
        if (empty) empty.hidden = !log.hidden;
        if (atEnd) log.scrollTop = log.scrollHeight;
      }
      show("live: " + data.state + ", updated " + new Date().toLocaleTimeString());
      if (data.state !== initial) {
        clearInterval(timer);
        window.location.reload();
      }
    } catch (err) {
      show("live updates paused: " + err);
    } finally {
      busy = false;
    }
  }

  timer = setInterval(refresh, 1500);
  const stream = watched.dataset.stream;
  if (stream && window.EventSource) {
    const events = new EventSource(stream);
    events.onmessage = refresh;
    events.addEventListener("error", () => { /* the polling above goes on */ });
    window.addEventListener("pagehide", () => events.close());
  }
  refresh();
})();
