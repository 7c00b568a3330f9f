// The researcher's feasibility page: asks the hub with the session cookie
// and draws each region's released count and interval.
"use strict";
(function () {
  const form = document.getElementById("feas-form");
  if (!form) return;
  const problem = document.getElementById("feas-problem");
  const result = document.getElementById("feas-result");
  const bars = document.getElementById("feas-bars");

  async function budgets() {
    const resp = await fetch("/api/v1/feasibility", { credentials: "same-origin" });
    if (!resp.ok) return;
    const a = await resp.json();
    const tbody = document.querySelector("#budgets tbody");
    tbody.textContent = "";
    (a.budgets || []).forEach(function (b) {
      const tr = document.createElement("tr");
      tr.dataset.region = b.region;
      const td1 = document.createElement("td"); td1.textContent = b.region + (b.name ? " " + b.name : "");
      const td2 = document.createElement("td"); td2.className = "r";
      td2.textContent = b.remaining == null ? (b.status || "–") : b.remaining.toFixed(2);
      tr.append(td1, td2); tbody.appendChild(tr);
    });
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const f = new FormData(form);
    const criteria = { purpose: f.get("purpose"), unit: f.get("unit") };
    if (f.get("age_min") || f.get("age_max")) criteria.age = { min: Number(f.get("age_min")), max: Number(f.get("age_max")) };
    if (f.get("from") || f.get("to")) criteria.exam_date = { from: f.get("from"), to: f.get("to") };
    if (f.getAll("birads").length) criteria.birads = f.getAll("birads");
    if (f.getAll("density").length) criteria.density = f.getAll("density");
    problem.hidden = true;
    const resp = await fetch("/api/v1/feasibility", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Bildrum-Request": "1" }, body: JSON.stringify(criteria) });
    const a = await resp.json();
    if (!resp.ok) { problem.textContent = a.detail || ("Error " + resp.status); problem.hidden = false; return; }
    result.hidden = false;
    bars.textContent = "";
    let max = 10;
    a.regions.forEach(function (r) { if (r.interval) max = Math.max(max, r.interval[1]); if (r.count) max = Math.max(max, r.count); });
    a.regions.forEach(function (r) {
      const row = document.createElement("div");
      row.className = "bar-row " + r.status;
      row.dataset.region = r.region;
      const label = document.createElement("span"); label.className = "label"; label.textContent = r.region + " " + (r.name || "");
      const track = document.createElement("span"); track.className = "track";
      const value = document.createElement("span"); value.className = "value";
      if (r.status !== "ok") {
        value.textContent = "no answer: " + (r.reason || r.status);
      } else if (r.suppressed || r.count == null) {
        value.textContent = "fewer than 10";
        row.classList.add("suppressed");
      } else {
        const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = (100 * r.count / max) + "%";
        track.appendChild(bar);
        if (r.interval) {
          const ci = document.createElement("span"); ci.className = "ci";
          ci.style.left = (100 * Math.max(r.interval[0], 0) / max) + "%"; ci.style.width = (100 * (r.interval[1] - Math.max(r.interval[0], 0)) / max) + "%";
          track.appendChild(ci);
        }
        value.textContent = r.count + (r.interval ? "  (" + Math.max(r.interval[0], 0) + "–" + r.interval[1] + ")" : "");
      }
      row.append(label, track, value);
      bars.appendChild(row);
    });
    const t = a.total || {};
    let text = "In total " + (t.count != null ? t.count : "–") + (t.interval ? " (95 %: " + Math.max(t.interval[0], 0) + "–" + t.interval[1] + ")" : "");
    if ((t.suppressed && t.suppressed.length) || (t.missing && t.missing.length)) {
      text = "At least " + (t.count != null ? t.count : 0) + ": not counted " + [].concat(t.suppressed || [], t.missing || []).join(", ");
    }
    document.getElementById("feas-total").textContent = text + (a.complete ? "" : " — partial answer, not every region answered.");
    budgets();
  });
  budgets();
})();
