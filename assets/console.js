// Rapport console: copy buttons, dialogs, the connect card's tabs. Every page works
// without this file; it only makes them quicker to use.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) return;
      // Only the visible word changes, so the accessible name keeps saying what is copied.
      var label = button.querySelector(".label") || button;
      var before = label.textContent;
      copyText(source.textContent.trim()).then(function () {
        button.classList.add("copied");
        label.textContent = "Copied";
        setTimeout(function () { button.classList.remove("copied"); label.textContent = before; }, 2000);
      });
      return;
    }
    var opener = event.target.closest("[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog && dialog.showModal) {
        event.preventDefault();
        dialog.showModal();
        var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
        if (first) first.focus();
      }
      return;
    }
    var closer = event.target.closest("[data-close]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open && open.matches(":modal")) {
        event.preventDefault();
        open.close();
      }
    }
  });

  // Dialogs rendered open (a new key, a refused create) become modal.
  document.querySelectorAll("dialog[data-modal][open]").forEach(function (dialog) {
    if (!dialog.showModal) return;
    dialog.close();
    dialog.showModal();
  });

  // Tabs (WAI-ARIA tabs pattern): arrows, Home and End move between them.
  document.querySelectorAll("[data-tabs]").forEach(function (box) {
    var tabs = Array.prototype.slice.call(box.querySelectorAll('[role="tab"]'));
    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) panel.hidden = !on;
      });
      if (focus) tab.focus();
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (e) {
        var next = null;
        if (e.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        else if (e.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        else if (e.key === "Home") next = tabs[0];
        else if (e.key === "End") next = tabs[tabs.length - 1];
        if (next) { e.preventDefault(); select(next, true); }
      });
    });
    box.classList.add("tabs-ready");
    if (tabs.length) select(tabs[0], false);
  });

  // An import's page follows it while it runs (from whichever process runs it), then
  // shows the report.
  var progress = document.querySelector("[data-poll]");
  if (progress && window.fetch) {
    var url = progress.getAttribute("data-poll");
    var bar = document.getElementById("import-bar");
    var poll = function () {
      fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          // Logged out, or no longer allowed: the page itself says what to do.
          if (r.redirected || r.status === 401 || r.status === 403 || r.status === 404) {
            window.location.reload();
            return null;
          }
          // A server that is busy or restarting: asked again a little later.
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (v) {
          if (!v) return;
          progress.querySelectorAll("[data-field]").forEach(function (el) {
            var value = v[el.getAttribute("data-field")];
            if (value !== undefined) el.textContent = value;
          });
          if (bar) bar.value = v.rows_done;
          if (v.state === "running") setTimeout(poll, 1500);
          else window.location.reload();
        })
        .catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1000);
  }
})();
