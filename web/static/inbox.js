// Mina data: her inbox of invitations to studies. Loads them from the
// invitations API with her session cookie and answers each with accept or
// decline. Every text from the researcher is set as text, never as HTML.
// Plain JS, no build step.
"use strict";
(function () {
  const section = document.getElementById("inbox");
  if (!section) return;
  const api = section.dataset.inbox;
  const lang = (document.querySelector(".citizen") || section).dataset.lang === "en" ? "en" : "sv";
  const list = document.getElementById("invitations");
  const empty = document.getElementById("inbox-empty");
  const problem = document.getElementById("inbox-problem");
  const template = document.getElementById("invitation-template");

  // contact is what accepting would pass on: her saved trial contact,
  // read from her choices when the page loads and each time she saves.
  let contact = "";
  function readContact() {
    const optIn = document.getElementById("trial-opt-in");
    const email = document.getElementById("trial-email");
    const phone = document.getElementById("trial-phone");
    if (!optIn || !optIn.checked) { contact = ""; return; }
    contact = [email && email.value.trim(), phone && phone.value.trim()].filter(Boolean).join(", ");
  }

  async function answerOf(resp) {
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) throw new Error(body && body.detail ? body.detail : "Error " + resp.status);
    return body;
  }

  function day(t) { return t ? String(t).slice(0, 10) : ""; }

  function statusText(it) {
    const d = section.dataset;
    switch (it.status) {
      case "pending": return it.open ? d.stPending : d.stClosed;
      case "accepted": return d.stAccepted + (it.answered ? " " + d.answeredOn + " " + day(it.answered) : "");
      case "declined": return d.stDeclined + (it.answered ? " " + d.answeredOn + " " + day(it.answered) : "");
      case "withdrawn": return d.stWithdrawn;
    }
    return it.status;
  }

  function set(card, cls, text) { card.querySelector(cls).textContent = text || ""; }

  function card(it) {
    const c = template.content.firstElementChild.cloneNode(true);
    c.dataset.id = it.id;
    c.dataset.status = it.status;
    const canAnswer = it.status === "pending" && it.open;
    c.classList.add(canAnswer ? "open" : it.status);
    set(c, ".inv-title", it.title);
    const status = c.querySelector(".invitation-status");
    status.textContent = statusText(it);
    status.classList.add(canAnswer ? "pending" : (it.status === "pending" ? "closed" : it.status));
    const r = it.researcher || {};
    set(c, ".inv-researcher", (r.name || "") + (r.organisation ? ", " + r.organisation : ""));
    set(c, ".inv-sponsor", it.sponsor);
    set(c, ".inv-ethics", it.ethics_approval);
    set(c, ".inv-received", day(it.created));
    set(c, ".inv-ends", it.ends);
    set(c, ".inv-text", it.invitation_text);
    set(c, ".why-intro", it.why_intro);
    const why = c.querySelector(".why-list");
    (it.why || []).forEach(function (w) {
      const li = document.createElement("li");
      li.textContent = w;
      why.appendChild(li);
    });

    const answer = c.querySelector(".answer");
    answer.hidden = !canAnswer;
    set(c, ".inv-will-pass", contact || section.dataset.noContact);

    if (it.status === "accepted") {
      const given = [it.contact && it.contact.email, it.contact && it.contact.phone].filter(Boolean).join(", ");
      set(c, ".inv-contact-list", given || "—");
      c.querySelector(".inv-contact").hidden = false;
    }

    const accept = c.querySelector(".accept"), decline = c.querySelector(".decline");
    const cardProblem = c.querySelector(".inv-problem");
    async function send(yes) {
      accept.disabled = decline.disabled = true;
      cardProblem.hidden = true;
      try {
        const fresh = await answerOf(await fetch(api + "/" + encodeURIComponent(it.id) + "/" + (yes ? "accept" : "decline") + "?lang=" + lang, {
          method: "POST", credentials: "same-origin", headers: { "X-Bildrum-Request": "1" }
        }));
        c.replaceWith(card(fresh));
        notice();
      } catch (e) {
        cardProblem.textContent = e.message;
        cardProblem.hidden = false;
        accept.disabled = decline.disabled = false;
      }
    }
    accept.addEventListener("click", function () { send(true); });
    decline.addEventListener("click", function () { send(false); });
    return c;
  }

  async function load() {
    let items;
    try {
      items = await answerOf(await fetch(api + "?lang=" + lang, { credentials: "same-origin" }));
    } catch (e) {
      list.textContent = "";
      problem.textContent = e.message;
      problem.hidden = false;
      return;
    }
    problem.hidden = true;
    list.textContent = "";
    items.forEach(function (it) { list.appendChild(card(it)); });
    empty.hidden = items.length > 0;
    notice();
  }

  // notice tells her at the top of the page how many invitations wait for
  // her answer.
  function notice() {
    const box = document.getElementById("inbox-notice");
    if (!box) return;
    const n = list.querySelectorAll(".invitation.open").length;
    const link = box.querySelector("a");
    link.textContent = n === 1 ? link.dataset.single : link.dataset.several.replace("{n}", n);
    box.hidden = n === 0;
  }

  // Saving her choices may withdraw pending invitations (trial contact
  // turned off) or change what accepting passes on: citizen.js marks a
  // save by setting the result's data-version.
  const result = document.getElementById("result");
  if (result && window.MutationObserver) {
    new MutationObserver(function () { readContact(); load(); })
      .observe(result, { attributes: true, attributeFilter: ["data-version"] });
  }

  readContact();
  load();
})();
