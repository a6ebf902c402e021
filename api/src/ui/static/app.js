// Hyperfleet dashboard: progressive enhancement only. Every page works
// without this file (full reloads); it adds confirmations and live updates.
//
// Live updates: a page with a `data-live` element listens to /ui/events
// (server-sent events, one change feed per server) from the feed position
// the page was rendered at (`data-feed`), and fetches server-rendered
// fragments for what changed. Updates pause while the tab is hidden and
// when the reader pauses them (the Live/Paused button in the top bar).
"use strict";

document.documentElement.classList.add("js");

// "Copy as curl": copies the text of the element the button names.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  var source = button && document.querySelector(button.getAttribute("data-copy"));
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "Copied";
    });
  }
});

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

(function () {
  var root = document.querySelector("[data-live]");
  var toggle = document.getElementById("live");
  if (!root || !toggle || !window.EventSource || !window.fetch) {
    return;
  }
  var PAUSED_KEY = "hyperfleet.paused";
  var kind = root.getAttribute("data-live");
  var last = root.getAttribute("data-feed") || "";
  var paused = readPaused();
  var source = null;
  var broken = false;

  function readPaused() {
    try {
      return window.localStorage.getItem(PAUSED_KEY) === "1";
    } catch (e) {
      return false;
    }
  }

  function writePaused(value) {
    try {
      window.localStorage.setItem(PAUSED_KEY, value ? "1" : "0");
    } catch (e) {
      // Private mode: the choice lasts for this page only.
    }
  }

  function showState() {
    toggle.hidden = false;
    toggle.textContent = broken ? "Offline" : paused ? "Paused" : "Live";
    toggle.className = broken ? "offline" : paused ? "paused" : "live";
    toggle.setAttribute("aria-pressed", paused ? "false" : "true");
    toggle.title = paused ? "Updates are paused: click to resume" : "Updates are live: click to pause";
  }

  function connect() {
    if (source || paused || broken || document.hidden) {
      return;
    }
    source = new EventSource("/ui/events?last_event_id=" + encodeURIComponent(last));
    source.addEventListener("op", function (e) {
      last = e.lastEventId || last;
      var change = JSON.parse(e.data);
      changed(change.id);
    });
    source.addEventListener("reset", function (e) {
      last = e.lastEventId || last;
      reset();
    });
    source.onerror = function () {
      // A refused stream (the session ended) closes; a dropped one reconnects by itself.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        broken = true;
        showState();
      }
    };
  }

  function disconnect() {
    if (source) {
      source.close();
      source = null;
    }
  }

  toggle.addEventListener("click", function () {
    paused = !paused;
    writePaused(paused);
    if (paused) {
      disconnect();
    } else {
      broken = false;
      connect();
    }
    showState();
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      disconnect();
    } else {
      connect();
    }
  });

  // Fetches a fragment; a session that ended leads to the login page.
  function fragment(url) {
    return window
      .fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (resp) {
        if (resp.redirected || resp.status === 401) {
          window.location.reload();
          return null;
        }
        return resp.ok ? resp.text() : null;
      });
  }

  function parse(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  // ---- one operation: swap in the page body when it changes ----
  var debounce = null;
  function later(fn, ms) {
    if (debounce === null) {
      debounce = window.setTimeout(function () {
        debounce = null;
        fn();
      }, ms);
    }
  }

  function refreshBody(url) {
    fragment(url).then(function (html) {
      if (html !== null) {
        root.replaceChildren(parse(html));
      }
    });
  }

  // ---- the operations list ----
  var rows = document.getElementById("rows");
  var bar = document.getElementById("new-bar");
  var show = document.getElementById("show-new");
  var firstPage = root.getAttribute("data-first-page") === "true";
  var filter = root.getAttribute("data-filter") || "";
  var pending = {};
  var held = {}; // id → row, new to the page and not shown yet
  var missed = false;

  function onPage(id) {
    return rows.querySelector('tr[data-id="' + id + '"]');
  }

  function flush() {
    var mine = [];
    var others = [];
    // Ids are time-ordered (UUIDv7): only operations newer than the page's
    // newest row are new; an older one changing belongs to a later page.
    var top = rows.querySelector("tr[data-id]");
    var newest = top ? top.getAttribute("data-id") : "";
    Object.keys(pending).forEach(function (id) {
      if (onPage(id)) {
        mine.push(id);
      } else if (id > newest || held[id]) {
        others.push(id);
      }
    });
    pending = {};
    rowsOf(mine, "", function (found) {
      found.forEach(function (tr) {
        var old = onPage(tr.getAttribute("data-id"));
        if (old) {
          var box = old.querySelector('input[name="id"]');
          var fresh = tr.querySelector('input[name="id"]');
          if (box && fresh) {
            fresh.checked = box.checked;
          }
          old.replaceWith(tr);
        }
      });
    });
    if (firstPage) {
      rowsOf(others, filter, function (found, asked) {
        // A held row that no longer matches the filter is no longer news.
        asked.forEach(function (id) {
          delete held[id];
        });
        found.forEach(function (tr) {
          held[tr.getAttribute("data-id")] = tr;
        });
        showBar();
      });
    }
  }

  // The rows of `ids` that match `query`, fetched 100 at a time (the server's cap).
  function rowsOf(ids, query, then) {
    for (var i = 0; i < ids.length; i += 100) {
      fetchRows(ids.slice(i, i + 100), query, then);
    }
  }

  function fetchRows(asked, query, then) {
    var url = "/ui/operations/rows?ids=" + asked.join(",") + (query ? "&" + query : "");
    fragment(url).then(function (html) {
      if (html !== null) {
        then(parse(html).querySelectorAll("tr[data-id]"), asked);
      }
    });
  }

  function showBar() {
    var n = Object.keys(held).length;
    bar.hidden = n === 0 && !missed;
    if (missed) {
      show.textContent = "Updates were missed — reload";
      bar.hidden = false;
    } else if (n > 0) {
      show.textContent = n + " new — show";
      bar.hidden = false;
    }
  }

  function showNew() {
    if (missed) {
      window.location.reload();
      return;
    }
    var ids = Object.keys(held).sort().reverse();
    var first = rows.firstChild;
    ids.forEach(function (id) {
      rows.insertBefore(held[id], first);
    });
    held = {};
    bar.hidden = true;
    var empty = root.querySelector(".empty");
    if (empty && ids.length) {
      empty.remove();
    }
  }

  if (kind === "list" && bar) {
    show.addEventListener("click", showNew);
    var all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", function () {
        rows.querySelectorAll('input[name="id"]').forEach(function (box) {
          box.checked = all.checked;
        });
      });
    }
  }

  function changed(id) {
    if (kind === "list") {
      pending[id] = true;
      window.setTimeout(flush, 100);
    } else if (kind === "operation") {
      if (id === root.getAttribute("data-id")) {
        later(function () {
          refreshBody("/ui/operations/" + root.getAttribute("data-id") + "/fragment");
        }, 100);
      }
    } else if (kind === "overview") {
      later(function () {
        refreshBody("/ui/fragments/overview");
      }, 1000);
    }
  }

  // The server no longer knows what this page missed: read it all again.
  function reset() {
    if (kind === "list") {
      rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
        pending[tr.getAttribute("data-id")] = true;
      });
      flush();
      if (firstPage) {
        missed = true;
        showBar();
      }
    } else {
      changed(root.getAttribute("data-id"));
    }
  }

  showState();
  connect();
})();
