// Mina data: saves a woman's choices through the consent API with her
// session cookie. Plain JS, no build step.
"use strict";
(function () {
  const form = document.getElementById("choices");
  if (!form) return;
  const result = document.getElementById("result");
  const blockAll = document.getElementById("block-all");

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const optOuts = Array.from(form.querySelectorAll("input[name=allow]"))
      .filter(function (i) { return !i.checked; })
      .map(function (i) { return i.value; });
    let blocks = Array.from(form.querySelectorAll("input[name=block]:checked")).map(function (i) { return i.value; });
    if (blockAll.checked) blocks = ["all"];
    const optIn = document.getElementById("trial-opt-in").checked;
    const body = {
      opt_outs: optOuts,
      trial_contact: optIn ? {
        opt_in: true,
        email: document.getElementById("trial-email").value.trim(),
        phone: document.getElementById("trial-phone").value.trim()
      } : { opt_in: false },
      care_blocks: blocks
    };
    result.className = "";
    result.textContent = "…";
    const resp = await fetch("/api/v1/me/consent", {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Bildrum-Request": "1" },
      body: JSON.stringify(body)
    });
    const answer = await resp.json();
    if (!resp.ok) {
      result.className = "warning";
      result.textContent = answer.detail || ("Error " + resp.status);
      return;
    }
    result.className = "ok";
    result.textContent = result.dataset.saved + " ";
    (answer.propagated || []).forEach(function (a) {
      const span = document.createElement("span");
      span.className = "badge " + a.status;
      span.dataset.region = a.region;
      span.textContent = a.region + (a.status === "ok" ? " ✓" : " … " + a.status);
      result.appendChild(span);
    });
    result.dataset.version = answer.version;
  });
})();

// Her events: each checked here, in her browser, against the log's signed
// checkpoint, so she need not trust the hub: the checkpoint's Ed25519
// signature with the published verifier key, the leaf's inclusion proof up
// to the checkpoint's root (RFC 6962), and the leaf's commitment with her
// own person key, which shows the event is about her.
(function () {
  const section = document.getElementById("events-section");
  if (!section) return;
  const tbody = document.querySelector("#events tbody");
  const enc = new TextEncoder();
  const b64 = function (s) { return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); }); };
  const cat = function () {
    const parts = Array.from(arguments), out = new Uint8Array(parts.reduce(function (n, p) { return n + p.length; }, 0));
    let o = 0; parts.forEach(function (p) { out.set(p, o); o += p.length; }); return out;
  };
  const sha256 = async function (b) { return new Uint8Array(await crypto.subtle.digest("SHA-256", b)); };
  const equal = function (a, b) { return a.length === b.length && a.every(function (x, i) { return x === b[i]; }); };

  // verifyCheckpoint checks the signed note and returns its tree size and root.
  async function verifyCheckpoint(note, vkey) {
    // name+hash+base64: the base64 may itself hold "+", so cut at the first two only.
    const i = vkey.indexOf("+"), j = vkey.indexOf("+", i + 1);
    const name = vkey.slice(0, i), keyHash = vkey.slice(i + 1, j), keyB64 = vkey.slice(j + 1);
    const raw = b64(keyB64);
    if (raw[0] !== 1) throw new Error("verifier key is not Ed25519");
    const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    const cut = note.indexOf("\n\n");
    const body = note.slice(0, cut + 1);
    let ok = false;
    for (const line of note.slice(cut + 2).split("\n")) {
      const m = line.match(/^\u2014 (\S+) (\S+)$/);
      if (!m || m[1] !== name) continue;
      const sig = b64(m[2]);
      const hash = Array.from(sig.slice(0, 4)).map(function (x) { return x.toString(16).padStart(2, "0"); }).join("");
      if (hash !== keyHash) continue;
      ok = ok || await crypto.subtle.verify("Ed25519", key, sig.slice(4), enc.encode(body));
    }
    if (!ok) throw new Error("checkpoint signature does not verify");
    const lines = body.split("\n");
    return { size: Number(lines[1]), root: b64(lines[2]) };
  }

  // rootFromProof recomputes the tree root from a leaf's inclusion proof (RFC 9162 §2.1.3.2).
  async function rootFromProof(index, size, leaf, proof) {
    let fn = index, sn = size - 1;
    let r = await sha256(cat(new Uint8Array([0]), leaf));
    for (const p of proof) {
      if (sn === 0) throw new Error("proof too long");
      if ((fn & 1) === 1 || fn === sn) {
        r = await sha256(cat(new Uint8Array([1]), p, r));
        if ((fn & 1) === 0) { while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        r = await sha256(cat(new Uint8Array([1]), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }

  // isHers: a leaf about no one person (version 2, no commitment) is nobody's.
  async function isHers(personKey, leafJSON) {
    if (!leafJSON.commitment || !leafJSON.nonce) return false;
    const key = await crypto.subtle.importKey("raw", personKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, cat(enc.encode("bildrum/tlog/v1/commitment\u0000"), b64(leafJSON.nonce))));
    return equal(mac, b64(leafJSON.commitment));
  }

  function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }

  (async function () {
    const resp = await fetch(section.dataset.events, { credentials: "same-origin" });
    if (!resp.ok) { const tr = document.createElement("tr"); cell(tr, "Error " + resp.status); tbody.appendChild(tr); return; }
    const a = await resp.json();
    let cp = null, cpError = "";
    try { cp = await verifyCheckpoint(a.checkpoint, a.verifier_key); } catch (e) { cpError = e.message; }
    const personKey = b64(a.person_key);
    if (a.events.length === 0) { const tr = document.createElement("tr"); cell(tr, "—"); cell(tr, "No use of your data has been logged."); tbody.appendChild(tr); }
    for (const ev of a.events) {
      const tr = document.createElement("tr");
      tr.dataset.index = ev.index;
      cell(tr, ev.time.replace("T", " ").replace("Z", ""));
      cell(tr, ev.actor.organisation + " (" + ev.actor.role + ")" + (ev.actor_name ? " · " + ev.actor_name : ""));
      cell(tr, ev.kind + (ev.what ? ": " + ev.what : "") + (ev.region ? " · region " + ev.region : ""));
      cell(tr, (ev.purpose || "her own choice") + " · " + ev.legal_basis);
      const proof = cell(tr, "checking…", "proof");
      tbody.appendChild(tr);
      try {
        if (cpError) throw new Error(cpError);
        const leaf = b64(ev.leaf);
        if (!(await isHers(personKey, JSON.parse(new TextDecoder().decode(leaf))))) throw new Error("not committed to you");
        if (ev.pending) { proof.textContent = "logged, in the next checkpoint"; proof.className = "proof pending"; continue; }
        const root = await rootFromProof(ev.index, cp.size, leaf, (ev.proof || []).map(b64));
        if (!equal(root, cp.root)) throw new Error("not in the signed tree");
        proof.textContent = "✓ verified in tree of " + cp.size;
        proof.className = "proof verified";
      } catch (e) {
        proof.textContent = "✗ " + e.message;
        proof.className = "proof failed";
      }
    }
  })();
})();
