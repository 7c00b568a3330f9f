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
