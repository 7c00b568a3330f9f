package bildrum

import (
	"context"
	"iter"
	"time"
)

// BIRADS is an ACR BI-RADS assessment category, "0" (incomplete: needs
// additional imaging) to "6" (known biopsy-proven malignancy); "" is not recorded.
type BIRADS string

// Density is the ACR BI-RADS breast composition, "a" (almost entirely fatty)
// to "d" (extremely dense); "" is not recorded.
type Density string

// Outcome is the final diagnosis of an episode's findings.
type Outcome string

// The outcomes; OutcomeNone is a screen without a diagnosis to record.
const (
	OutcomeNone     Outcome = ""
	OutcomeBenign   Outcome = "benign"
	OutcomeDCIS     Outcome = "dcis"     // ductal carcinoma in situ
	OutcomeInvasive Outcome = "invasive" // invasive breast cancer
)

// Detection says how a cancer was found.
type Detection string

// The detection modes of a cancer recorded on an episode.
const (
	DetectedAtScreen Detection = "screen"   // screen-detected, after recall
	DetectedInterval Detection = "interval" // interval cancer after a negative screen
)

// Nodal status of an invasive cancer.
const (
	NodesNegative = "negative"
	NodesPositive = "positive"
)

// The standard mammography views, ImageLaterality + view (CID 4014).
const (
	ViewRCC  = "RCC"
	ViewLCC  = "LCC"
	ViewRMLO = "RMLO"
	ViewLMLO = "LMLO"
)

// StandardViews are the four views of a screening examination.
func StandardViews() []string { return []string{ViewRCC, ViewLCC, ViewRMLO, ViewLMLO} }

// ScreeningEpisode is one row of a region's screening register: one
// invitation and everything that followed from it, the examination, its
// double reading, recall and assessment, the diagnosis, and an interval
// cancer found before the next invitation. The column specification of
// docs/register.md describes each field.
type ScreeningEpisode struct {
	ID     string   `json:"id"`        // stable within the region; the key of re-imports
	Person PersonID `json:"person_id"` // personnummer or samordningsnummer
	Region string   `json:"region"`    // county code of the register
	Unit   string   `json:"unit"`      // screening unit code

	// Invitation.
	Round   int  `json:"round"`           // 1 for a woman's first invitation
	Invited Date `json:"invitation_date"` // date the invitation was sent

	// Examination; zero when she did not attend.
	Attended        bool     `json:"attended"`
	Examined        Date     `json:"exam_date"`
	TechnicalRepeat bool     `json:"technical_repeat"` // a view had to be retaken
	Views           []string `json:"views,omitempty"`  // RCC, LCC, RMLO, LMLO …

	// Double reading.
	Reader1   BIRADS  `json:"reader1_birads"`
	Reader2   BIRADS  `json:"reader2_birads"`
	Consensus BIRADS  `json:"consensus_birads"`
	Density   Density `json:"density"`
	Recalled  bool    `json:"recalled"`    // recalled for assessment
	ResultDay Date    `json:"result_date"` // result sent to the woman

	// Assessment after recall.
	Assessed          Date   `json:"assessment_date"`
	AdditionalImaging bool   `json:"additional_imaging"`
	Ultrasound        bool   `json:"ultrasound"`
	NeedleBiopsy      bool   `json:"needle_biopsy"`
	OpenBiopsy        bool   `json:"open_surgical_biopsy"`
	AssessmentBIRADS  BIRADS `json:"assessment_birads"`

	// Diagnosis: of a screen-detected finding, or of an interval cancer.
	Outcome        Outcome   `json:"outcome"`
	Detection      Detection `json:"detection,omitempty"`
	Diagnosed      Date      `json:"diagnosis_date"`
	TumourSizeMM   int       `json:"tumour_size_mm,omitempty"` // invasive component, mm
	NodalStatus    string    `json:"nodal_status,omitempty"`   // negative, positive
	Stage          string    `json:"stage,omitempty"`          // 0, I, II, III, IV
	PreopDiagnosis bool      `json:"preoperative_diagnosis"`   // diagnosed by needle biopsy before surgery
	IntervalMonths int       `json:"interval_months,omitempty"`
}

// PutResult says what PutEpisodes did.
type PutResult struct {
	Changed   int `json:"changed"`   // rows inserted or corrected
	Unchanged int `json:"unchanged"` // rows already stored exactly so
}

// RegisterSummary describes a region's register at one data version.
type RegisterSummary struct {
	Region      string    `json:"region"`
	Women       int       `json:"women"`       // distinct persons invited
	Invitations int       `json:"invitations"` // episodes
	Exams       int       `json:"exams"`       // attended examinations
	FirstExam   Date      `json:"first_exam"`
	LastExam    Date      `json:"last_exam"`
	DataVersion int64     `json:"data_version"` // increases with every change
	UpdatedAt   time.Time `json:"updated_at"`
}

// EpisodeFilter selects register rows; zero fields do not filter.
type EpisodeFilter struct {
	From, To Date    // examination or, if not attended, invitation date, inclusive
	Unit     string  // screening unit code
	Outcome  Outcome // when set, only episodes with this outcome
	Limit    int     // at most this many rows (the store caps it)
	Offset   int
}

// RegisterStore holds one region's screening register at its node.
//
// PutEpisodes is atomic: all episodes are stored or none; on return without
// error they are durable. Episodes are keyed by ID: a new ID is inserted, a
// stored ID with different content is replaced (a correction), an identical
// one is left alone, so re-importing changes nothing. The data version
// increases once per call that changed anything.
// PutEpisodeStream does the same for a sequence too large to hold in memory:
// it reads the sequence inside one transaction and commits only if the
// sequence ends without error; an error from the sequence, or ctx ending,
// rolls everything back and is returned.
// ListEpisodes returns rows ordered by date and ID, and the number matching
// the filter without limit and offset. Implementations are safe for concurrent use.
type RegisterStore interface {
	PutEpisodes(ctx context.Context, episodes []ScreeningEpisode) (PutResult, error)
	PutEpisodeStream(ctx context.Context, episodes iter.Seq2[ScreeningEpisode, error]) (PutResult, error)
	RegisterSummary(ctx context.Context) (RegisterSummary, error)
	ListEpisodes(ctx context.Context, f EpisodeFilter) ([]ScreeningEpisode, int, error)
}
