/* Nachtregister kiosk helpers: no inline script anywhere, so the CSP can forbid it.
   1. A form is sent once: the submit button is disabled after the first submit
      (the server also ignores a second submit of the same form).
   2. On a kiosk tablet (body[data-kiosk-reset]) the page returns to its start after
      data-kiosk-idle seconds without input, so nothing of the last visitor stays on screen.
   3. The error summary of a refused form: focus, and links that focus their fields. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].setAttribute("aria-disabled", "true"); }
  });
  window.addEventListener("pageshow", function () {
    var forms = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < forms.length; i++) { delete forms[i].dataset.sent; }
  });
  // 3. After a refused submit the error summary takes the focus (autofocus does it without
  //    JavaScript in most browsers), and each of its links puts the focus in its field.
  var summary = document.getElementById("error-summary");
  if (summary && document.activeElement !== summary) { summary.focus(); }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-summary a[href^='#']");
    if (!link) { return; }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) { return; }
    var more = field.closest("details");
    if (more) { more.open = true; }
    event.preventDefault();
    var label = document.querySelector("label[for='" + field.id + "']");
    (label || field).scrollIntoView({ block: "center" });
    field.focus({ preventScroll: true });
  });
  var body = document.body;
  var target = body && body.dataset.kioskReset;
  if (!target) { return; }
  var idleMs = (parseInt(body.dataset.kioskIdle, 10) || 60) * 1000;
  var timer = null;
  function arm() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { window.location.replace(target); }, idleMs);
  }
  ["input", "keydown", "pointerdown", "touchstart", "scroll", "change"].forEach(function (name) {
    document.addEventListener(name, arm, { passive: true });
  });
  arm();
})();
