package web

import (
	"net/http"
	"regexp"

	"github.com/bildrum/bildrum"
)

// uidPattern is a DICOM UID (PS3.5 §9.1).
var uidPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// studiesPage is the region's studies with thumbnails; its script reads the
// node's own DICOMweb (QIDO-RS and thumbnails) with the session cookie, so
// every image it shows is read, and recorded, like any other.
func (n *Node) studiesPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := n.imageReader(w, r); !ok {
		return
	}
	render(w, r, n.Log, n.studies, struct{ Region bildrum.Region }{n.Region})
}

// viewerPage shows the four views of one examination side by side.
func (n *Node) viewerPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := n.imageReader(w, r); !ok {
		return
	}
	study := r.URL.Query().Get("study")
	if len(study) > 64 || !uidPattern.MatchString(study) {
		http.Error(w, "Give the examination as ?study=STUDY-INSTANCE-UID (digits and dots).", http.StatusBadRequest)
		return
	}
	render(w, r, n.Log, n.viewer, struct {
		Region bildrum.Region
		Study  string
	}{n.Region, study})
}

// imageReader admits the region's own staff and radiologists to image pages.
func (n *Node) imageReader(w http.ResponseWriter, r *http.Request) (bildrum.Principal, bool) {
	p, ok := pagePrincipal(w, r, n.Auth, bildrum.RoleStaff, bildrum.RoleRadiologist)
	if ok && p.Region != n.Region.Code {
		http.Error(w, "These are region "+n.Region.Code+"'s images; you work for region "+p.Region+".", http.StatusForbidden)
		return p, false
	}
	return p, ok
}
