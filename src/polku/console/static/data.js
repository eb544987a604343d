// The event debugger's live list, kept live as the signal list is (static/console.js,
// `PolkuLive.start`, loaded first by the layout): the server says when something arrived or
// was refused (server-sent events from data-stream, `changed`); the page then fetches the
// list fragment (data-refresh) and swaps it in. Where EventSource is missing or keeps
// failing, it polls the fragment every data-seconds instead. Older pages have no
// data-stream and stand still. A swap waits while the focus is inside the list (on a
// link), so it is never pulled from under the user.
"use strict";
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("data-events");
    if (list && window.PolkuLive) {
      window.PolkuLive.start(list, function (target, html) {
        target.innerHTML = html;
      });
    }
  });
})();
