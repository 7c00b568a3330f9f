package bildrum

import (
	"fmt"
	"sort"
)

// Region is one of Sweden's 21 regions, named by its official county code
// (länskod, two digits, as a string) and name. Every node serves one region.
type Region struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// regions are the 21 regions with their official county codes (SCB).
var regions = []Region{
	{"01", "Stockholm"},
	{"03", "Uppsala"},
	{"04", "Södermanland"},
	{"05", "Östergötland"},
	{"06", "Jönköping"},
	{"07", "Kronoberg"},
	{"08", "Kalmar"},
	{"09", "Gotland"},
	{"10", "Blekinge"},
	{"12", "Skåne"},
	{"13", "Halland"},
	{"14", "Västra Götaland"},
	{"17", "Värmland"},
	{"18", "Örebro"},
	{"19", "Västmanland"},
	{"20", "Dalarna"},
	{"21", "Gävleborg"},
	{"22", "Västernorrland"},
	{"23", "Jämtland Härjedalen"},
	{"24", "Västerbotten"},
	{"25", "Norrbotten"},
}

// Regions returns the 21 regions ordered by county code.
func Regions() []Region {
	out := make([]Region, len(regions))
	copy(out, regions)
	return out
}

// RegionByCode returns the region with the given two-digit county code, or an
// EINVALID error naming the valid codes.
func RegionByCode(code string) (Region, error) {
	for _, r := range regions {
		if r.Code == code {
			return r, nil
		}
	}
	return Region{}, Errorf(EINVALID, "unknown region %q: use a two-digit county code such as 01 (Stockholm), 12 (Skåne) or 14 (Västra Götaland)", code)
}

// SortRegionCodes sorts county codes in place, in official order.
func SortRegionCodes(codes []string) { sort.Strings(codes) }

// String returns "12 Skåne".
func (r Region) String() string { return fmt.Sprintf("%s %s", r.Code, r.Name) }
