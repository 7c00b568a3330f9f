package web

import (
	"net/http"

	"github.com/bildrum/bildrum"
)

// researchPage is the researcher's feasibility page: a form for the
// criteria; its script asks POST /api/v1/feasibility with the session
// cookie and draws each region's count with its interval, suppressed cells
// as such, and the budgets left.
func (f *Feasibility) researchPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := pagePrincipal(w, r, f.Auth, bildrum.RoleResearcher); !ok {
		return
	}
	var secondary []bildrum.Purpose
	for _, p := range bildrum.Purposes() {
		if p.Secondary() && p != bildrum.PurposeRecruitment {
			secondary = append(secondary, p)
		}
	}
	render(w, r, f.Log, f.page, struct {
		Purposes []bildrum.Purpose
		Regions  []bildrum.Region
	}{secondary, bildrum.Regions()})
}
