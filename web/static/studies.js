// The region's studies: QIDO-RS against the node's own DICOMweb, with
// thumbnails from WADO-RS. The session cookie authorises every request.
"use strict";
(function () {
  const list = document.getElementById("studies");
  const count = document.getElementById("study-count");
  const more = document.getElementById("more");
  const form = document.getElementById("study-search");
  let offset = 0, query = "";
  const tag = function (obj, t) { const v = obj[t] && obj[t].Value; return v ? v[0] : ""; };
  const dicomDate = function (s) { return s ? s.replace(/-/g, "") : ""; };

  async function load(reset) {
    if (reset) { offset = 0; list.textContent = ""; }
    const resp = await fetch("/dicomweb/studies?limit=24&offset=" + offset + "&includefield=all" + query,
      { credentials: "same-origin", headers: { Accept: "application/dicom+json" } });
    if (resp.status === 204) { count.textContent = offset ? "" : "No studies match."; more.hidden = true; return; }
    if (!resp.ok) { count.textContent = "Error " + resp.status + ": " + (await resp.text()); return; }
    const studies = await resp.json();
    studies.forEach(function (s) {
      const uid = tag(s, "0020000D");
      const li = document.createElement("li");
      li.dataset.study = uid;
      const a = document.createElement("a");
      a.href = "/viewer?study=" + encodeURIComponent(uid);
      const img = document.createElement("img");
      img.loading = "lazy";
      img.alt = "thumbnail";
      img.src = "/dicomweb/studies/" + encodeURIComponent(uid) + "/thumbnail?viewport=160,200";
      const who = document.createElement("strong");
      who.textContent = tag(s, "00100020");
      const when = document.createElement("span");
      const d = tag(s, "00080020");
      when.textContent = d ? d.slice(0, 4) + "-" + d.slice(4, 6) + "-" + d.slice(6, 8) : "";
      const acc = document.createElement("span");
      acc.className = "muted";
      acc.textContent = tag(s, "00080050");
      a.append(img, who, when, acc);
      li.appendChild(a);
      list.appendChild(li);
    });
    offset += studies.length;
    count.textContent = offset + " studies shown";
    more.hidden = studies.length < 24;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const f = new FormData(form);
    query = "";
    if (f.get("PatientID")) query += "&PatientID=" + encodeURIComponent(f.get("PatientID"));
    const from = dicomDate(f.get("from")), to = dicomDate(f.get("to"));
    if (from || to) query += "&StudyDate=" + from + "-" + to;
    load(true);
  });
  more.addEventListener("click", function () { load(false); });
  load(true);
})();
