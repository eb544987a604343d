// The event debugger: fetch the list fragment again every few seconds.
(function () {
  "use strict";
  var box = document.getElementById("data-events");
  if (!box) return;
  var url = box.getAttribute("data-refresh");
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 3;
  function refresh() {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) box.innerHTML = html; })
      .catch(function () {})
      .then(function () { setTimeout(refresh, seconds * 1000); });
  }
  setTimeout(refresh, seconds * 1000);
})();
