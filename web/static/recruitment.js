// Trial recruitment: a researcher submits a request and follows its
// counts and the contacts of the women who accepted; a permit officer
// approves or rejects. Uses /api/v1/recruitment with the session cookie.
// Plain JS, no build step.
"use strict";
(function () {
  const list = document.getElementById("requests");
  if (!list) return;
  const role = list.dataset.role;
  const officer = role === "permit-officer";
  const regionNames = JSON.parse(list.dataset.regionNames || "{}");
  const listProblem = document.getElementById("requests-problem");
  const updated = document.getElementById("updated");
  const shown = {}; // id -> the JSON a card was drawn from, so unchanged cards (and what is typed in them) stay
  let timer = null;

  const headers = { "Content-Type": "application/json", "X-Bildrum-Request": "1" };

  // answerOf reads a response as JSON, and a problem's detail when not ok.
  async function answerOf(resp) {
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const detail = body && body.detail ? body.detail : "the server answered " + resp.status + " " + resp.statusText;
      throw new Error(detail);
    }
    return body;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function day(t) { return t ? String(t).slice(0, 10) : ""; }

  function regionName(code) { return code + (regionNames[code] ? " " + regionNames[code] : ""); }

  // criteriaText says a request's criteria in a line.
  function criteriaText(c) {
    const parts = [];
    if (c.age && (c.age.min || c.age.max)) parts.push("ages " + (c.age.min || "…") + "–" + (c.age.max || "…"));
    if (c.exam_date && (c.exam_date.from || c.exam_date.to)) parts.push("examined " + (c.exam_date.from || "…") + " to " + (c.exam_date.to || "…"));
    if (c.round) parts.push(c.round === "first" ? "first screen" : "subsequent screens");
    if (c.birads && c.birads.length) parts.push("BI-RADS " + c.birads.join(", "));
    if (c.density && c.density.length) parts.push("density " + c.density.join(", "));
    if (c.outcomes && c.outcomes.length) parts.push("outcomes " + c.outcomes.join(", ").replace(/_/g, " "));
    parts.push(c.regions && c.regions.length ? "regions " + c.regions.map(regionName).join(", ") : "every region");
    return parts.join(" · ");
  }

  // countText reads a SmallCount: the number, or "fewer than N" when suppressed.
  function countText(n, threshold) {
    if (n == null) return "–";
    if (typeof n === "number") return String(n);
    if (n.suppressed || n.count == null) return "fewer than " + (threshold || 10);
    return String(n.count);
  }

  function stat(cls, value, label) {
    const box = el("div", "stat");
    const num = el("span", "num " + cls, value);
    if (/^fewer/.test(value)) num.classList.add("suppressed");
    box.append(num, el("span", "lbl", label));
    return box;
  }

  // matching reports whether a request may still change by itself:
  // approved, so the nodes match and women answer until it ends.
  function matching(v) { return v.status === "approved"; }

  function card(v) {
    const c = el("article", "request card " + v.status);
    c.dataset.id = v.id;
    c.dataset.status = v.status;

    const head = el("header", "card-head");
    head.append(el("h3", "title", v.title), el("span", "status badge " + v.status, v.status));
    c.appendChild(head);

    const meta = el("dl", "facts");
    const fact = function (k, val) { if (!val) return; meta.append(el("dt", null, k), el("dd", null, val)); };
    fact("Sponsor", v.sponsor);
    fact("Ethics approval", v.ethics_approval);
    if (officer) fact("Researcher", v.researcher.name + (v.researcher.organisation ? ", " + v.researcher.organisation : ""));
    fact("Submitted", day(v.submitted_at));
    fact("Who", criteriaText(v.criteria || {}));
    fact("Invitations", "at most " + v.max_invitations + ", answers until " + v.ends);
    c.appendChild(meta);

    const text = el("details", "invitation-text");
    text.append(el("summary", null, "Invitation text"), el("p", "text", v.invitation_text));
    c.appendChild(text);

    if (!officer && v.status === "pending") {
      c.appendChild(el("p", "note awaiting", "Awaiting the permit authority's decision. Nothing is sent to the regions before it approves."));
    }
    if (v.status === "closed") {
      c.appendChild(el("p", "note", "Closed: its last day to answer has passed."));
    }

    if (v.decision) {
      const d = v.decision;
      const line = el("p", "decision " + (d.approve ? "approved" : "rejected"));
      line.textContent = (d.approve ? "Approved" : "Rejected") + " by " + d.by + (d.organisation ? " (" + d.organisation + ")" : "") +
        " on " + day(d.at) + (d.reason ? ": " + d.reason : "");
      c.appendChild(line);
    }

    if (v.status === "approved" || v.status === "closed") {
      const regions = el("ul", "matching");
      if (!v.regions || v.regions.length === 0) {
        regions.appendChild(el("li", "badge pending", "the regions' nodes are matching…"));
      }
      (v.regions || []).forEach(function (r) {
        const li = el("li", "badge region " + r.status);
        li.dataset.region = r.region;
        li.textContent = regionName(r.region) + (r.status === "ok" ? " ✓ matched" : " · " + r.status + (r.reason ? ": " + r.reason : ""));
        regions.appendChild(li);
      });
      c.appendChild(regions);
    }

    if (v.counts) {
      const k = v.counts;
      const counts = el("div", "summary counts");
      counts.append(
        stat("count-invited", countText(k.invited, k.threshold), "invited"),
        stat("count-accepted", countText(k.accepted, k.threshold), "accepted"),
        stat("count-declined", countText(k.declined, k.threshold), "declined"),
        stat("count-unanswered", countText(k.unanswered, k.threshold), "not yet answered"));
      c.appendChild(counts);
      c.appendChild(el("p", "note", "Numbers below " + (k.threshold || 10) + " are not shown, so that no woman can be singled out; declined includes women who withdrew their opt-in."));
    }

    if (!officer && (v.status === "approved" || v.status === "closed")) {
      const contacts = v.contacts || [];
      if (contacts.length === 0) {
        c.appendChild(el("p", "note no-contacts", "No woman has accepted yet. Her contact details appear here when she does."));
      } else {
        const table = el("table", "nodes contacts");
        const thead = el("thead");
        const hr = el("tr");
        hr.append(el("th", null, "E-mail"), el("th", null, "Phone"), el("th", null, "Accepted"));
        thead.appendChild(hr);
        const tbody = el("tbody");
        contacts.forEach(function (ct) {
          const tr = el("tr", "contact");
          tr.append(el("td", "contact-email", ct.email || "—"), el("td", "contact-phone", ct.phone || "—"), el("td", "contact-accepted", day(ct.accepted)));
          tbody.appendChild(tr);
        });
        table.append(thead, tbody);
        c.appendChild(el("h4", null, "Women who accepted: contact them as the invitation says"));
        c.appendChild(table);
      }
    }

    if (officer && v.status === "pending") c.appendChild(decisionForm(v));
    return c;
  }

  // decisionForm is a pending request's approve/reject controls.
  function decisionForm(v) {
    const box = el("div", "decide");
    const label = el("label", "wide", "Reason ");
    label.appendChild(el("span", "note", "required to reject; the researcher reads it"));
    const reason = el("textarea", "decision-reason");
    reason.rows = 3;
    reason.maxLength = 2000;
    label.appendChild(reason);
    const approve = el("button", "primary approve", "Approve");
    approve.type = "button";
    const reject = el("button", "danger reject", "Reject");
    reject.type = "button";
    const problem = el("p", "decision-problem warning");
    problem.setAttribute("role", "alert");
    problem.hidden = true;
    const buttons = el("div", "buttons");
    buttons.append(approve, reject);
    box.append(label, buttons, problem);

    async function decide(yes) {
      problem.hidden = true;
      approve.disabled = reject.disabled = true;
      try {
        await answerOf(await fetch("/api/v1/recruitment/" + encodeURIComponent(v.id) + "/decision", {
          method: "POST", credentials: "same-origin", headers: headers,
          body: JSON.stringify({ approve: yes, reason: reason.value.trim() })
        }));
        const fresh = await answerOf(await fetch("/api/v1/recruitment/" + encodeURIComponent(v.id), { credentials: "same-origin" }));
        draw(fresh);
        schedule();
      } catch (e) {
        problem.textContent = e.message;
        problem.hidden = false;
        approve.disabled = reject.disabled = false;
      }
    }
    approve.addEventListener("click", function () { decide(true); });
    reject.addEventListener("click", function () { decide(false); });
    return box;
  }

  // draw puts a request's card in the list, replacing its old card only
  // when the request changed.
  function draw(v, before) {
    const json = JSON.stringify(v);
    const old = list.querySelector('.request[data-id="' + CSS.escape(v.id) + '"]');
    if (old && shown[v.id] === json) {
      if (before !== undefined && old !== before) list.insertBefore(old, before);
      return old;
    }
    shown[v.id] = json;
    const c = card(v);
    if (old) old.replaceWith(c);
    else if (before !== undefined) list.insertBefore(c, before);
    else list.prepend(c);
    return c;
  }

  let views = [];
  async function load() {
    try {
      views = await answerOf(await fetch("/api/v1/recruitment", { credentials: "same-origin" }));
    } catch (e) {
      listProblem.textContent = e.message;
      listProblem.hidden = false;
      return;
    }
    listProblem.hidden = true;
    const ids = {};
    views.forEach(function (v) { ids[v.id] = true; });
    Array.from(list.querySelectorAll(".request")).forEach(function (c) {
      if (!ids[c.dataset.id]) { delete shown[c.dataset.id]; c.remove(); }
    });
    // Keep the API's order (newest first).
    let next = null;
    for (let i = views.length - 1; i >= 0; i--) next = draw(views[i], next);
    let empty = list.querySelector(".empty");
    if (views.length === 0 && !empty) {
      list.appendChild(el("p", "note empty", officer ? "No requests yet." : "You have no requests yet. Fill in the form above to send one for approval."));
    } else if (views.length > 0 && empty) {
      empty.remove();
    }
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    schedule();
  }

  // schedule refreshes every few seconds while a request is approved: the
  // nodes are matching and women are answering.
  function schedule() {
    if (timer) return;
    if (!views.some(matching) && !list.querySelector('.request[data-status="approved"]')) return;
    timer = setTimeout(function () {
      timer = null;
      if (document.visibilityState === "hidden") { schedule(); return; }
      load();
    }, 5000);
  }

  document.getElementById("refresh").addEventListener("click", function () {
    if (timer) { clearTimeout(timer); timer = null; }
    load();
  });

  const form = document.getElementById("recruit-form");
  if (form) {
    const problem = document.getElementById("recruit-problem");
    const done = document.getElementById("recruit-done");
    const submit = document.getElementById("recruit-submit");
    const textArea = document.getElementById("invitation-text");
    const counter = document.getElementById("invitation-count");
    const max = Number(textArea.dataset.max) || 2000;
    const ends = document.getElementById("ends");

    // The end date must lie after today.
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
    ends.min = tomorrow.toISOString().slice(0, 10);

    function count() {
      // Characters as the server counts them: code points of the trimmed text.
      const n = Array.from(textArea.value.trim()).length;
      counter.textContent = n + " / " + max;
      counter.classList.toggle("over", n > max);
    }
    textArea.addEventListener("input", count);
    count();

    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const f = new FormData(form);
      const num = function (name) { const s = String(f.get(name) || "").trim(); return s === "" ? 0 : Number(s); };
      const criteria = {};
      if (f.getAll("regions").length) criteria.regions = f.getAll("regions");
      if (num("age_min") || num("age_max")) criteria.age = { min: num("age_min"), max: num("age_max") };
      if (f.get("from") || f.get("to")) criteria.exam_date = { from: f.get("from") || null, to: f.get("to") || null };
      if (f.get("round")) criteria.round = f.get("round");
      if (f.getAll("birads").length) criteria.birads = f.getAll("birads");
      if (f.getAll("density").length) criteria.density = f.getAll("density");
      const body = {
        title: f.get("title"), sponsor: f.get("sponsor"), ethics_approval: f.get("ethics_approval"),
        criteria: criteria, invitation_text: f.get("invitation_text"),
        max_invitations: num("max_invitations"), ends: f.get("ends") || null
      };
      problem.hidden = true;
      done.hidden = true;
      submit.disabled = true;
      try {
        const req = await answerOf(await fetch("/api/v1/recruitment", {
          method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body)
        }));
        done.textContent = "Sent: “" + req.title + "” awaits the permit authority's decision.";
        done.hidden = false;
        form.reset();
        count();
        await load();
      } catch (e) {
        problem.textContent = e.message;
        problem.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
  }

  load();
})();
