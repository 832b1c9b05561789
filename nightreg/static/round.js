/* The night round (admin/round): marks made where the pier has no signal are kept on this
   phone (localStorage) and sent, in order, when the connection is back ('online', and every
   15 seconds). Each mark carries the idempotency key its form was given: sent twice (an
   answer lost on the way, a second tab), it is written once. An entry leaves the queue only
   when the server has answered it. Without this script the page's forms post as usual.
   No inline script, no eval: it runs under the app's CSP. */
(function () {
  "use strict";
  var STORE = "nightreg.round.queue";
  var RETRY_MS = 15000;
  var SOON_MS = 3000;
  var status = document.getElementById("round-sync");
  if (!status || !window.fetch || !window.localStorage || !window.URLSearchParams) return;
  var sending = false;
  var lastButton = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE) || "[]"); } catch (e) { return []; }
  }
  function save(queue) { localStorage.setItem(STORE, JSON.stringify(queue)); }
  function drop(id) { save(load().filter(function (entry) { return entry.id !== id; })); }

  function newKey() {  // like the server's: 18 random bytes, URL-safe base64
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf() {
    var field = document.querySelector("input[name=_csrf_token]");
    return field ? field.value : "";
  }
  function text(name, values) {
    var out = status.getAttribute("data-" + name) || "";
    Object.keys(values || {}).forEach(function (key) {
      out = out.split("{" + key + "}").join(values[key]);
    });
    return out;
  }
  function say(message) { status.textContent = message; }
  function showQueue() {
    var n = load().length;
    if (!n) say(text("msg-sent"));
    else say(text(navigator.onLine ? "msg-sending" : "msg-waiting", { n: n }));
  }

  function siteTime(iso) {  // HH:mm on the site's clock, as the page shows marks
    var at = new Date(iso);
    try {
      return new Intl.DateTimeFormat("en-GB", {
        timeZone: status.getAttribute("data-tz") || undefined,
        hour: "2-digit", minute: "2-digit", hourCycle: "h23"
      }).format(at);
    } catch (e) {
      return ("0" + at.getHours()).slice(-2) + ":" + ("0" + at.getMinutes()).slice(-2);
    }
  }

  function recount() {
    var boats = document.querySelectorAll(".round-boat");
    var counts = { seen: 0, missing: 0, unmarked: 0 };
    Array.prototype.forEach.call(boats, function (boat) {
      if (boat.classList.contains("mark-seen")) counts.seen += 1;
      else if (boat.classList.contains("mark-missing")) counts.missing += 1;
      else counts.unmarked += 1;
    });
    Object.keys(counts).forEach(function (name) {
      var cell = document.getElementById("round-count-" + name);
      if (cell) cell.textContent = String(counts[name]);
    });
  }

  function showMark(fields, state) {
    var boat = document.getElementById("boat-" + fields.visit);
    if (!boat) return;
    boat.classList.remove("mark-seen", "mark-missing");
    boat.classList.add("mark-" + fields.status);
    var line = boat.querySelector("[data-round-state]");
    var time = siteTime(fields.marked_at);
    if (line) line.textContent = text("label-" + fields.status) + " · " + time + (state ? " · " + state : "");
    recount();
  }

  function foundLine(entry) {
    var list = document.getElementById("round-found-list");
    if (!list) return null;
    var item = document.getElementById("found-" + entry.id);
    if (!item) {
      item = document.createElement("li");
      item.id = "found-" + entry.id;
      list.appendChild(item);
    }
    return item;
  }

  function fill(form, fields) {
    Object.keys(fields).forEach(function (name) {
      var input = form.querySelector("input[type=text][name=" + name + "]");
      if (input) input.value = fields[name];
    });
  }

  function settle(entry, ok, body) {
    var fields = entry.fields;
    var errors = (body && body.errors) || {};
    var message = Object.keys(errors).map(function (k) { return errors[k]; }).join(" ");
    if (entry.kind === "mark") {
      if (ok) showMark(fields, "");
      else {
        var boat = document.getElementById("boat-" + fields.visit);
        var line = boat && boat.querySelector("[data-round-state]");
        if (line) line.textContent = text("msg-refused", { message: message });
      }
    } else if (entry.kind === "found") {
      var item = foundLine(entry);
      var names = { name: fields.vessel_name, berth: fields.berth };
      if (item) item.textContent = ok ? text("msg-found-added", names) : text("msg-refused", { message: message });
      if (!ok) {
        var form = document.querySelector("form[data-round-queue=found]");
        if (form) fill(form, fields);
      }
    } else if (entry.kind === "finish" && ok && body && body.url) {
      window.location.assign(body.url);
    }
  }

  function flush() {
    if (sending) return;
    var queue = load();
    if (!queue.length || !navigator.onLine) { showQueue(); return; }
    sending = true;
    say(text("msg-sending", { n: queue.length }));
    var entry = queue[0];
    var token = csrf();
    var body = new URLSearchParams();
    Object.keys(entry.fields).forEach(function (name) { body.append(name, entry.fields[name]); });
    body.set("_csrf_token", token);
    fetch(entry.url, {
      method: "POST",
      body: body,
      headers: { "Accept": "application/json", "x-csrftoken": token },
      credentials: "same-origin",
      redirect: "manual"
    }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
        throw { signIn: true };  // signed out: keep everything until the person is back
      }
      if (response.status >= 500 || response.status === 408 || response.status === 429) {
        throw { retry: true };
      }
      return response.json().catch(function () { return {}; }).then(function (answer) {
        drop(entry.id);  // answered: taken (or a replay of the first), or refused for good
        settle(entry, response.ok, answer);
      });
    }).then(function () {
      sending = false;
      flush();
    }, function (problem) {
      sending = false;
      if (problem && problem.signIn) { say(text("msg-signin")); return; }
      showQueue();
      // A pier's signal comes and goes: try again soon, not only on the next 'online'.
      if (navigator.onLine) window.setTimeout(flush, SOON_MS);
    });
  }

  function enqueue(form, button) {
    var kind = form.getAttribute("data-round-queue");
    var fields = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name]"), function (input) {
      if (input.name !== "_csrf_token") fields[input.name] = input.value;
    });
    if (button && button.name) fields[button.name] = button.value;
    fields.marked_at = new Date().toISOString();
    var entry = {
      id: fields.idempotency_key || newKey(),
      url: form.getAttribute("action"),
      kind: kind,
      fields: fields
    };
    var queue = load();
    queue.push(entry);
    save(queue);
    var keyField = form.querySelector("input[name=idempotency_key]");
    if (keyField) keyField.value = newKey();  // the next tap on this form is another mark
    return entry;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[type=submit]") : null;
    if (button) lastButton = button;
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-round-queue")) return;
    // This script sends the round's forms, each tap with a key of its own: the general
    // once-only guard of kiosk.js (loaded after this script) must not hold the next tap.
    event.stopImmediatePropagation();
    var button = event.submitter || lastButton;
    var kind = form.getAttribute("data-round-queue");
    if (kind === "found") {
      var value = function (name) {
        var input = form.querySelector("input[name=" + name + "]");
        return input ? input.value.trim() : "";
      };
      var item;
      if (!value("vessel_name") || !value("berth") || !(value("registration") || value("mmsi"))) {
        event.preventDefault();
        item = foundLine({ id: "check" });
        if (item) { item.textContent = text("msg-found-missing"); item.className = "error"; }
        return;
      }
    }
    event.preventDefault();
    var entry = enqueue(form, button);
    if (kind === "mark") showMark(entry.fields, text("msg-pending"));
    if (kind === "found") {
      var check = document.getElementById("found-check");
      if (check) check.parentNode.removeChild(check);
      item = foundLine(entry);
      if (item) item.textContent = text("msg-found-waiting", { name: entry.fields.vessel_name, berth: entry.fields.berth });
      Array.prototype.forEach.call(form.querySelectorAll("input[type=text]"), function (input) { input.value = ""; });
    }
    flush();
  });

  // Marks still waiting from before this page was (re)loaded: shown as waiting, then sent.
  load().forEach(function (entry) {
    if (entry.kind === "mark") showMark(entry.fields, text("msg-pending"));
    if (entry.kind === "found") {
      var item = foundLine(entry);
      if (item) item.textContent = text("msg-found-waiting", { name: entry.fields.vessel_name, berth: entry.fields.berth });
    }
  });
  window.addEventListener("online", flush);
  window.addEventListener("offline", showQueue);
  window.setInterval(flush, RETRY_MS);
  flush();
})();
