// The register page's import: sends the chosen file with the session
// cookie and shows the report or the bad rows.
"use strict";
(function () {
  const form = document.getElementById("import-form");
  if (!form) return;
  const out = document.getElementById("import-result");
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const file = document.getElementById("import-file").files[0];
    if (!file) return;
    const type = file.name.endsWith(".json") ? "application/fhir+json" : "text/csv";
    out.className = "";
    out.textContent = "Importing " + file.name + " …";
    const resp = await fetch("/api/v1/register/import?name=" + encodeURIComponent(file.name), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": type, "X-Bildrum-Request": "1" }, body: file
    });
    const a = await resp.json();
    out.textContent = "";
    if (resp.ok) {
      out.className = "ok";
      out.textContent = a.file + ": " + a.rows + " rows read, " + a.changed + " new or corrected, " + a.unchanged + " unchanged.";
      return;
    }
    out.className = "warning";
    const p = document.createElement("p");
    p.textContent = a.detail;
    out.appendChild(p);
    const ul = document.createElement("ul");
    (a.errors || []).forEach(function (e) {
      const li = document.createElement("li");
      li.textContent = (e.line ? "line " + e.line : "entry " + e.entry) + (e.field ? " (" + e.field + ")" : "") + ": " + e.message;
      ul.appendChild(li);
    });
    out.appendChild(ul);
  });
})();
