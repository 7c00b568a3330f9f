// The four views of one examination side by side (R CC, L CC above; R MLO,
// L MLO below), rendered by the node's WADO-RS with each image's own window.
"use strict";
(function () {
  const viewer = document.getElementById("viewer");
  if (!viewer) return;
  const study = viewer.dataset.study;
  const status = document.getElementById("viewer-status");
  const tag = function (obj, t) { const v = obj[t] && obj[t].Value; return v ? v[0] : ""; };
  const viewCodes = { "399162004": "CC", "399368009": "MLO" };

  (async function () {
    const base = "/dicomweb/studies/" + encodeURIComponent(study);
    const resp = await fetch(base + "/instances?includefield=all", { credentials: "same-origin", headers: { Accept: "application/dicom+json" } });
    if (!resp.ok) { status.textContent = "Error " + resp.status; return; }
    const found = await resp.json();
    const meta = await fetch(base + "/metadata", { credentials: "same-origin", headers: { Accept: "application/dicom+json" } });
    const instances = meta.ok ? await meta.json() : [];
    let shown = 0;
    instances.forEach(function (m) {
      const lat = tag(m, "00200062");
      const seq = m["00540220"] && m["00540220"].Value;
      const code = seq && seq[0] && tag(seq[0], "00080100");
      const view = lat + (viewCodes[code] || "");
      const fig = viewer.querySelector('figure[data-view="' + view + '"]');
      if (!fig) return;
      const img = fig.querySelector("img");
      img.src = base + "/series/" + encodeURIComponent(tag(m, "0020000E")) + "/instances/" + encodeURIComponent(tag(m, "00080018")) + "/rendered?viewport=512,640";
      fig.dataset.loaded = "1";
      shown++;
      if (shown === 1) {
        const d = tag(m, "00080020");
        document.getElementById("exam-title").textContent = "Examination " + (d ? d.slice(0, 4) + "-" + d.slice(4, 6) + "-" + d.slice(6, 8) : "");
        document.getElementById("exam-facts").textContent = tag(m, "00100020") + " · accession " + tag(m, "00080050");
      }
    });
    status.textContent = shown + " of 4 standard views" + (found.length > shown ? " (" + found.length + " images in the study)" : "");
  })();
})();
