// Polku console: keeps the signal list live. The server says when the list changed
// (server-sent events from data-stream); the page then fetches the list fragment
// (data-refresh) and swaps it in. Where EventSource is missing or keeps failing, it polls
// the fragment every few seconds instead. No library: the server renders the HTML. The
// page works without it (reload to refresh). A swap is skipped while the user is in one of
// the list's forms, so a half-chosen outcome is never replaced under their hands; the
// skipped change is fetched once they leave the form.
//
// Focus, for the keyboard and screen readers: a swap never moves or drops the focused
// element (it waits, as above); signals that arrive are announced in the layout's polite
// #announcer region by their heading. After a decision on a card (claim, outcome, ...) the
// page reloads, and focus returns to the same card instead of the top of the page. A page
// that opens with an error (role=alert) in main, or that answers a form with a result
// (role=status), focuses it, so it is read out and the next Tab continues from there.
"use strict";
(function () {
  var RETURN = "polku-return-focus";
  function focusOn(element) {
    if (element.tabIndex < 0 && !element.hasAttribute("tabindex")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus();
  }
  function signalIds(root) {
    var ids = {};
    root.querySelectorAll("li.signal[data-signal]").forEach(function (card) {
      ids[card.getAttribute("data-signal")] = true;
    });
    return ids;
  }
  function announce(text) {
    var region = document.getElementById("announcer");
    if (region && text) {
      region.textContent = "";
      // A new text node after a tick, so the same words twice are still read out.
      window.setTimeout(function () {
        region.textContent = text;
      }, 50);
    }
  }
  function swap(list, html) {
    var before = signalIds(list);
    list.innerHTML = html;
    var fresh = [];
    list.querySelectorAll("li.signal[data-signal]").forEach(function (card) {
      var head = card.querySelector(".head");
      if (!before[card.getAttribute("data-signal")] && head) {
        fresh.push(head.textContent.replace(/\s+/g, " ").trim());
      }
    });
    announce(fresh.join(". "));
  }
  function rememberSubmits() {
    // What was sent, for the page that answers it (often after a redirect).
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var card = form.closest ? form.closest("li.signal[data-signal]") : null;
      var mark = {
        path: window.location.pathname,
        signal: card ? card.getAttribute("data-signal") : null,
        action: form.getAttribute("action") || "",
      };
      try {
        window.sessionStorage.setItem(RETURN, JSON.stringify(mark));
      } catch (ignored) {
        /* no storage: focus starts at the top, as without the script */
      }
    });
  }
  function lastSubmit() {
    try {
      var mark = JSON.parse(window.sessionStorage.getItem(RETURN) || "null");
      window.sessionStorage.removeItem(RETURN);
      return mark;
    } catch (ignored) {
      return null;
    }
  }
  function returnedCard(mark) {
    if (!mark || !mark.signal || mark.path !== window.location.pathname) {
      return null;
    }
    var id = String(mark.signal).replace(/[^0-9A-Za-z_-]/g, "");
    var card = document.querySelector('li.signal[data-signal="' + id + '"]');
    if (!card) {
      return null;
    }
    var same = null;
    card.querySelectorAll("form").forEach(function (form) {
      if (form.getAttribute("action") === mark.action) {
        same = form.querySelector("button[type=submit], button:not([type])");
      }
    });
    return same || card.querySelector(".actions button") || card;
  }
  function settleFocus() {
    var main = document.getElementById("main");
    if (!main || document.querySelector("[autofocus]")) {
      return;
    }
    var mark = lastSubmit(); // read (and forgotten) on every page, used or not
    var target = main.querySelector("[role=alert]") || returnedCard(mark);
    if (!target && mark) {
      target = main.querySelector("[role=status]"); // the result of what was just sent
    }
    if (target) {
      focusOn(target);
    }
  }
  // Keep `list` live: `put(list, html)` swaps a fetched fragment in (the signal list
  // announces its new cards; others just replace the HTML). Shared with data.js.
  function start(list, put) {
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
            put(list, html);
          }
        })
        .catch(function () {
          pending = true; /* the server is restarting: try again at the next change or tick */
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
  window.PolkuLive = { start: start };
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("signal-list");
    rememberSubmits();
    settleFocus();
    if (list) {
      start(list, swap);
    }
  });
})();
