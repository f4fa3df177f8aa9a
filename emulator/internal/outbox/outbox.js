// Live outbox: follows /emulator/events (Server-Sent Events) and adds each new message to
// the top of the table (marking the older codes of the same challenge as replaced), shows
// times in the browser's time zone, and makes the "Copy code" buttons work. Without JavaScript the page
// reloads itself instead (a <noscript> meta refresh). No inline script: the page's CSP
// allows only same-origin scripts and connections.
(function () {
  "use strict";

  var table = document.getElementById("messages");
  var rowTemplate = document.getElementById("message-row");
  if (!table || !rowTemplate || !window.EventSource) {
    return;
  }
  var tbody = table.tBodies[0];
  var empty = document.getElementById("no-messages");
  var live = document.getElementById("live-status");
  var copyStatus = document.getElementById("copy-status");

  function setLive(text) {
    live.textContent = text;
    live.hidden = false;
  }

  function showCopyButtons(root) {
    var buttons = root.querySelectorAll("button.copy");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = !buttons[i].getAttribute("data-code"); // a message without a code (a Call Connect link)
    }
  }

  function field(row, name) {
    return row.querySelector('[data-field="' + name + '"]');
  }

  // localTime shows a <time datetime="…UTC…"> in local time, the UTC value as its title.
  function localTime(el) {
    var utc = el.getAttribute("datetime");
    var d = new Date(utc);
    if (!utc || isNaN(d.getTime())) {
      return;
    }
    el.title = utc;
    el.textContent = d.toLocaleString();
  }

  function localTimes(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      localTime(times[i]);
    }
  }

  // replaceOlder marks the codes shown for a challenge that just sent a newer one.
  function replaceOlder(challengeId) {
    if (!challengeId) {
      return;
    }
    for (var i = 0; i < tbody.rows.length; i++) {
      var row = tbody.rows[i];
      if (row.getAttribute("data-challenge") === challengeId) {
        row.classList.add("stale");
        var state = field(row, "state");
        state.textContent = "replaced by a newer code";
        state.hidden = false;
      }
    }
  }

  // render builds a row from the page's <template>, so its markup matches the server's.
  // textContent only: message text is never parsed as HTML.
  function render(m) {
    var row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.id = "m-" + m.id;
    row.setAttribute("data-challenge", m.challengeId || "");
    var code = field(row, "code");
    code.id = "code-" + m.id;
    code.textContent = m.code;
    var button = row.querySelector("button.copy");
    button.setAttribute("data-code", m.code);
    button.setAttribute("aria-describedby", code.id);
    var link = field(row, "link");
    if (m.link) link.setAttribute("href", m.link);
    link.hidden = !m.link;
    field(row, "to").textContent = m.to;
    field(row, "channel").textContent = m.channel;
    var subject = field(row, "subject");
    subject.textContent = m.subject || "";
    subject.hidden = !m.subject;
    field(row, "body").textContent = m.body;
    var time = field(row, "createdAt");
    time.setAttribute("datetime", m.createdAt);
    time.textContent = m.createdAt;
    localTime(time);
    return row;
  }

  function add(m) {
    // A reconnect may replay a message already shown.
    if (document.getElementById("m-" + m.id)) {
      return;
    }
    var row = render(m);
    showCopyButtons(row);
    replaceOlder(m.challengeId);
    tbody.insertBefore(row, tbody.firstChild);
    table.hidden = false;
    empty.hidden = true;
  }

  // Copy code: the Clipboard API where allowed (localhost counts as secure), otherwise
  // select the code so the user can copy it by hand.
  table.addEventListener("click", function (ev) {
    var button = ev.target.closest("button.copy");
    if (!button) {
      return;
    }
    var code = button.getAttribute("data-code");
    var selectCode = function () {
      var range = document.createRange();
      range.selectNodeContents(document.getElementById(button.getAttribute("aria-describedby")));
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      copyStatus.textContent = "Code " + code + " selected: press Ctrl+C (or ⌘C) to copy it.";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code).then(function () {
        copyStatus.textContent = "Code " + code + " copied.";
      }, selectCode);
    } else {
      selectCode();
    }
  });
  showCopyButtons(table);
  localTimes(table);

  // The stream URL carries ?after=<newest id on the page>, so messages sent while the page
  // loaded are replayed; on reconnect the browser sends Last-Event-ID and the server
  // replays whatever was missed (also after the server dropped a slow stream).
  var source = new EventSource(table.getAttribute("data-events"));
  source.addEventListener("open", function () {
    setLive("Live: new messages appear at the top.");
  });
  source.addEventListener("error", function () {
    setLive(source.readyState === EventSource.CLOSED
      ? "Live updates stopped; reload the page."
      : "Reconnecting to the emulator…");
  });
  source.addEventListener("message", function (ev) {
    try {
      add(JSON.parse(ev.data));
    } catch (err) {
      // A malformed event is skipped; the next reload shows the outbox as stored.
    }
  });
})();
