// Polku console: keeps the signal list live by fetching its fragment every few seconds.
// No library: the server renders the HTML; this only swaps it in. The page works without
// it (reload to refresh). A refresh is skipped while the user is in one of the list's
// forms, so a half-chosen outcome is never replaced under their hands.
"use strict";
(function () {
  function start(list) {
    var url = list.getAttribute("data-refresh");
    var seconds = Number(list.getAttribute("data-seconds")) || 3;
    function busy() {
      var active = document.activeElement;
      return active && active !== document.body && list.contains(active);
    }
    function refresh() {
      if (document.visibilityState !== "visible" || busy()) {
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 403) {
            window.location.reload(); // signed out or no longer allowed: show why
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && !busy()) {
            list.innerHTML = html;
          }
        })
        .catch(function () {
          /* the server is restarting: try again at the next tick */
        });
    }
    window.setInterval(refresh, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("signal-list");
    if (list) {
      start(list);
    }
  });
})();
