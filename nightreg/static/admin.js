/* Staff pages: no inline script anywhere, so the CSP can forbid it. Loaded in <head>, not
   deferred, so that the page is drawn once with script in mind (the class "js").
   1. On a narrow screen the navigation folds behind a "Menu" button; without script it stays
      unfolded, and the site switcher and account menu are <details> that need no script.
   2. An open menu (site switcher, account) closes on a click elsewhere or on Escape.
   3. A button with data-print opens the browser's print dialogue (the police print).
   4. A table that scrolls inside its own box on a narrow screen can be reached by keyboard. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function closeMenus(except) {
    var open = document.querySelectorAll("details.switcher[open], details.account[open]");
    for (var i = 0; i < open.length; i++) { if (open[i] !== except) { open[i].removeAttribute("open"); } }
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) { return; }
    var toggle = target.closest(".menu-toggle");
    if (toggle) {
      var panel = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (panel) { panel.classList.toggle("open", open); }
      return;
    }
    closeMenus(target.closest("details.switcher, details.account"));
    if (target.closest("[data-print]")) { event.preventDefault(); window.print(); }
  });
  function markScrollers() {
    var boxes = document.querySelectorAll("table.data, .scroll, .police-print");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1) { box.setAttribute("tabindex", "0"); }
      else if (!box.classList.contains("scroll")) { box.removeAttribute("tabindex"); }
    }
  }
  document.addEventListener("DOMContentLoaded", markScrollers);
  window.addEventListener("resize", markScrollers);
  document.addEventListener("htmx:afterSettle", markScrollers);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { closeMenus(null); }
  });
})();
