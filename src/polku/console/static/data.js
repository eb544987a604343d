// The event debugger's live list, as the signal list is kept live (static/console.js):
// the server says when something arrived or was refused (server-sent events from
// data-stream, `changed`); the page then fetches the list fragment (data-refresh) and swaps
// it in. Where EventSource is missing or keeps failing, it polls the fragment every
// data-seconds instead. Older pages have no data-stream and stand still. A swap waits while
// the focus is inside the list (on a link), so it is never pulled from under the user.
"use strict";
(function () {
  function start(list) {
    var url = list.getAttribute("data-refresh");
    var stream = list.getAttribute("data-stream");
    var marker = list.getAttribute("data-marker") || "";
    var seconds = Number(list.getAttribute("data-seconds")) || 3;
    var pending = false;
    var polling = null;
    function busy() {
      var active = document.activeElement;
      return active && active !== document.body && list.contains(active);
    }
    function refresh() {
      if (busy()) {
        pending = true;
        return;
      }
      pending = false;
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 403) {
            window.location.reload(); // signed out or no longer allowed: show why
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) {
            return;
          }
          if (busy()) {
            pending = true;
          } else {
            list.innerHTML = html;
          }
        })
        .catch(function () {
          pending = true; // the server is restarting: try again at the next change or tick
        });
    }
    function poll() {
      if (polling === null) {
        polling = window.setInterval(function () {
          if (document.visibilityState === "visible") {
            refresh();
          }
        }, seconds * 1000);
      }
    }
    list.addEventListener("focusout", function () {
      window.setTimeout(function () {
        if (pending && !busy()) {
          refresh();
        }
      }, 0);
    });
    if (!stream || typeof window.EventSource !== "function") {
      poll();
      return;
    }
    var failures = 0;
    var source = new EventSource(stream + "&since=" + encodeURIComponent(marker));
    source.addEventListener("changed", function () {
      failures = 0;
      refresh();
    });
    source.addEventListener("open", function () {
      failures = 0;
    });
    source.addEventListener("error", function () {
      // The stream ends every few seconds by design and the browser reconnects; only a
      // stream that keeps failing (refused, or no server) falls back to polling.
      failures += 1;
      if (source.readyState === EventSource.CLOSED || failures > 5) {
        source.close();
        poll();
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("data-events");
    if (list) {
      start(list);
    }
  });
})();
