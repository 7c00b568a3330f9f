package synth

import "github.com/bildrum/bildrum"

// The rates of the simulated screening programme. Each is chosen to give the
// national figures Sweden reports, or the European guidelines' targets where
// Swedish ones are not at hand; docs/synth.md gives the same table with the
// reasoning. They make plausible data for development and tests, not
// estimates for research.
//
//	rate                          value                               source / rationale
//	interval between invitations  18, 21 or 24 months ±30 days        Socialstyrelsen: every 18–24 months, ages 40–74 (regionProfiles)
//	attendance                    72–86 % by region                   Socialstyrelsen reports 57–87 %, ~78 % overall; illustrative (regionProfiles)
//	attendance per woman          Beta(κp, κ(1−p)), κ = 3             women who skip tend to skip again; the mean stays p
//	days from invitation to exam  0–60, min of two uniform draws      most attend in the first weeks
//	technical repeat              2.5 %                               2–3 % of exams have a view retaken
//	density a/b/c/d               ~10/40/40/10 %, denser when young   ACR BI-RADS 5th ed. shares; density falls with age
//	recall, subsequent screen     2.4–3.6 % by region, ~3 %           Sweden reports 2–4 % (regionProfiles)
//	recall, first screen          × 5/3, ~5 %                         prevalence round; EU guidelines: <7 % initial, <5 % later
//	screen-detected cancer        2.8 + 0.19/year over 40, per 1000   ~5–6 per 1000 screened, rising with age
//	  at the first screen         × 1.5                               prevalent cancers
//	  by density a/b/c/d          × 1.10/1.05/0.95/0.80               dense tissue hides cancers
//	readers flagging a recall     both 60 %, one of them 40 %         double reading with consensus
//	flag dismissed at consensus   2 % of negative screens             consensus discussion
//	result letter                 5–21 days after the exam
//	assessment                    14–35 days after the exam           and after the result letter
//	  additional imaging          97 %                                almost always
//	  ultrasound                  95 % of cancers, 80 % of others     most
//	  needle biopsy               ~95 % of cancers, 40 % of others    ~50 % of recalls
//	  open surgical biopsy        cancers not diagnosed preop, 0.5 %  rare
//	preoperative diagnosis        90 %                                EU guidelines: >90 % desirable
//	DCIS share, screen-detected   17 %                                EU guidelines: 10–20 %
//	invasive size, screen         lognormal, median 13 mm, σ 0.62     ≤10 mm ~36 %, <15 mm ~57 % (EU: ≥25 %, ≥50 %)
//	invasive size, interval       lognormal, median 20 mm, σ 0.65     interval cancers are larger
//	node-positive by size         ≤10/≤20/≤50/>50 mm: 10/24/40/60 %   ~75 % node-negative at screen (EU: >75 %)
//	distant metastasis            0.5 % screen, 2 % interval          stage IV is rare in screening
//	interval cancer, 24 months    per 1000 by density a/b/c/d:        ~1.5 per 1000 in 24 months, denser higher;
//	                              0.75/1.1/1.7/3.1                    cut short by the next invitation (~0.9 at 18 months)
//	  timing                      a third in months 1–11              two thirds in months 12–23
//	  DCIS share                  5 %                                 mostly invasive
//	after a cancer                no further invitations              she leaves screening for clinical follow-up
const (
	intervalJitterDays   = 30
	examDelayMaxDays     = 60
	attendanceKappa      = 3.0
	technicalRepeatRate  = 0.025
	firstScreenRecallX   = 5.0 / 3
	cancerPerMilleAt40   = 2.8
	cancerPerMillePerYr  = 0.19
	firstScreenCancerX   = 1.5
	bothReadersFlag      = 0.60
	dismissedFlagRate    = 0.02
	resultMinDays        = 5
	resultMaxDays        = 21
	assessMinDays        = 14
	assessMaxDays        = 35
	additionalImagingP   = 0.97
	ultrasoundCancerP    = 0.95
	ultrasoundOtherP     = 0.80
	needleOtherP         = 0.40
	needleNotPreopP      = 0.50 // a needle biopsy that did not give the diagnosis
	openOtherP           = 0.005
	preopDiagnosisP      = 0.90
	dcisScreenShare      = 0.17
	dcisIntervalShare    = 0.05
	screenMedianMM       = 13.0
	screenSigma          = 0.62
	intervalMedianMM     = 20.0
	intervalSigma        = 0.65
	metastasisScreenP    = 0.005
	metastasisIntervalP  = 0.02
	intervalFirstYearP   = 1.0 / 3
	intervalMinDays      = 31 // so that IntervalMonths is at least 1
	benignBirads3P       = 0.35
	densitySlopePerYear  = 0.03
	densityWomanWeight   = 0.9
	densityScreenWeight  = 0.3
	densityThresholdUnit = 1.216 // ±1.28 sd of the latent score: 10 % tails at age 57
)

// densityFactor scales screen detection by breast density: dense tissue
// hides cancers.
var densityFactor = map[bildrum.Density]float64{"a": 1.10, "b": 1.05, "c": 0.95, "d": 0.80}

// intervalPerMille is the chance per 1,000 negative screens of an interval
// cancer within 24 months, by density.
var intervalPerMille = map[bildrum.Density]float64{"a": 0.75, "b": 1.1, "c": 1.7, "d": 3.1}

// regionProfile is what the simulation knows of a region.
type regionProfile struct {
	population int     // inhabitants in thousands (SCB, about 2023): the weight of the split
	attendance float64 // share of invitations attended
	interval   int     // typical months between invitations
	recall     float64 // recall rate at subsequent screens
}

// regionProfiles holds every region's profile. Populations are rounded
// figures of SCB's statistics, used as a proxy for the number of women aged
// 40–74. Attendance, interval and recall are illustrative values within the
// national ranges (attendance 57–87 %, recall 2–4 %, interval 18–24 months),
// not the regions' actual figures.
var regionProfiles = map[string]regionProfile{
	"01": {2450, 0.72, 18, 0.030},
	"03": {400, 0.80, 21, 0.028},
	"04": {300, 0.79, 24, 0.032},
	"05": {470, 0.82, 21, 0.027},
	"06": {370, 0.84, 24, 0.026},
	"07": {205, 0.83, 24, 0.030},
	"08": {250, 0.83, 21, 0.033},
	"09": {61, 0.86, 24, 0.024},
	"10": {160, 0.81, 24, 0.031},
	"12": {1410, 0.77, 18, 0.034},
	"13": {340, 0.82, 21, 0.029},
	"14": {1740, 0.78, 21, 0.031},
	"17": {285, 0.81, 24, 0.028},
	"18": {310, 0.80, 21, 0.030},
	"19": {280, 0.78, 24, 0.036},
	"20": {290, 0.83, 24, 0.027},
	"21": {290, 0.79, 24, 0.029},
	"22": {245, 0.80, 24, 0.025},
	"23": {132, 0.84, 24, 0.028},
	"24": {275, 0.85, 21, 0.026},
	"25": {250, 0.83, 24, 0.030},
}

// Unit is a screening unit (mammografienhet) of a region: where women are
// invited to and examined. Every episode names one.
type Unit struct {
	Code string `json:"code"` // county code, '-', three letters: "12-MAL"
	Name string `json:"name"`
}

// unitShare is a unit and its share of the region's women.
type unitShare struct {
	Unit
	weight int
}

// regionUnits are the screening units of each region with their shares:
// real-sounding units for the demo's regions, one to three named after the
// main towns elsewhere. The names are for the demo, not a directory.
var regionUnits = map[string][]unitShare{
	"01": {{Unit{"01-SOS", "Södersjukhuset Bröstcentrum"}, 40}, {Unit{"01-KSO", "Karolinska Solna Mammografi"}, 35}, {Unit{"01-CSG", "Capio S:t Görans Mammografi"}, 25}},
	"03": {{Unit{"03-UPP", "Mammografi Uppsala"}, 1}},
	"04": {{Unit{"04-ESK", "Mammografi Eskilstuna"}, 3}, {Unit{"04-NYK", "Mammografi Nyköping"}, 2}},
	"05": {{Unit{"05-LIN", "Mammografi Linköping"}, 1}, {Unit{"05-NKP", "Mammografi Norrköping"}, 1}},
	"06": {{Unit{"06-JON", "Mammografi Jönköping"}, 2}, {Unit{"06-VAR", "Mammografi Värnamo"}, 1}},
	"07": {{Unit{"07-VAX", "Mammografi Växjö"}, 1}},
	"08": {{Unit{"08-KAL", "Mammografi Kalmar"}, 2}, {Unit{"08-VVK", "Mammografi Västervik"}, 1}},
	"09": {{Unit{"09-VIS", "Mammografi Visby"}, 1}},
	"10": {{Unit{"10-KRN", "Mammografi Karlskrona"}, 1}},
	"12": {{Unit{"12-MAL", "Mammografi Malmö"}, 35}, {Unit{"12-LUN", "Mammografi Lund"}, 25}, {Unit{"12-HBG", "Mammografi Helsingborg"}, 25}, {Unit{"12-KRI", "Mammografi Kristianstad"}, 15}},
	"13": {{Unit{"13-HAL", "Mammografi Halmstad"}, 1}, {Unit{"13-VBG", "Mammografi Varberg"}, 1}},
	"14": {{Unit{"14-SAH", "Sahlgrenska Mammografi"}, 30}, {Unit{"14-OST", "Östra sjukhuset Mammografi"}, 20}, {Unit{"14-BOR", "Mammografi Borås"}, 20}, {Unit{"14-SKO", "Mammografi Skövde"}, 15}, {Unit{"14-UDD", "Mammografi Uddevalla"}, 15}},
	"17": {{Unit{"17-KST", "Mammografi Karlstad"}, 1}},
	"18": {{Unit{"18-ORE", "Mammografi Örebro"}, 1}},
	"19": {{Unit{"19-VAS", "Mammografi Västerås"}, 1}},
	"20": {{Unit{"20-FAL", "Mammografi Falun"}, 1}},
	"21": {{Unit{"21-GAV", "Mammografi Gävle"}, 2}, {Unit{"21-HUD", "Mammografi Hudiksvall"}, 1}},
	"22": {{Unit{"22-SUN", "Mammografi Sundsvall"}, 2}, {Unit{"22-OVK", "Mammografi Örnsköldsvik"}, 1}},
	"23": {{Unit{"23-OSD", "Mammografi Östersund"}, 1}},
	"24": {{Unit{"24-UME", "Mammografi Umeå"}, 2}, {Unit{"24-SKE", "Mammografi Skellefteå"}, 1}},
	"25": {{Unit{"25-LUL", "Mammografi Luleå"}, 2}, {Unit{"25-GAL", "Mammografi Gällivare"}, 1}},
}

// Units returns the screening units of a region (a county code), the ones
// its synthetic episodes name; nil for an unknown code.
func Units(region string) []Unit {
	var out []Unit
	for _, u := range regionUnits[region] {
		out = append(out, u.Unit)
	}
	return out
}
