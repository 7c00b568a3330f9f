package bildrum

import (
	"context"
	"time"
)

// Patient holds the patient attributes of a study as its instances carry
// them (PS3.3 C.7.1.1). ID is the personnummer in Swedish archives, but the
// archive keeps whatever the modality sent.
type Patient struct {
	ID        string `json:"id"`         // PatientID (0010,0020)
	Name      string `json:"name"`       // PatientName (0010,0010), PN in DICOM's ^-separated form
	BirthDate string `json:"birth_date"` // PatientBirthDate (0010,0030), YYYYMMDD
	Sex       string `json:"sex"`        // PatientSex (0010,0040): F, M, O or ""
}

// Study holds the study attributes of the image index (PS3.3 C.7.2.1) and,
// in search results, the counts derived from its series and instances.
type Study struct {
	Patient                Patient  `json:"patient"`
	StudyInstanceUID       string   `json:"study_instance_uid"`
	StudyDate              string   `json:"study_date"` // YYYYMMDD
	StudyTime              string   `json:"study_time"` // HHMMSS.FFFFFF
	AccessionNumber        string   `json:"accession_number"`
	StudyID                string   `json:"study_id"`
	StudyDescription       string   `json:"study_description"`
	ReferringPhysicianName string   `json:"referring_physician_name"`
	ModalitiesInStudy      []string `json:"modalities_in_study,omitempty"` // sorted; set by searches
	NumberOfSeries         int      `json:"number_of_series,omitempty"`    // set by searches
	NumberOfInstances      int      `json:"number_of_instances,omitempty"` // set by searches
}

// Series holds the series attributes of the image index (PS3.3 C.7.3.1).
type Series struct {
	SeriesInstanceUID string `json:"series_instance_uid"`
	Modality          string `json:"modality"`
	SeriesNumber      string `json:"series_number"` // IS as sent, "" when absent
	SeriesDescription string `json:"series_description"`
	BodyPartExamined  string `json:"body_part_examined"`
	NumberOfInstances int    `json:"number_of_instances,omitempty"` // set by searches
}

// Object is where the bytes of an instance are kept: the blob store key and
// what identifies those bytes exactly.
type Object struct {
	Key      string    `json:"key"`    // blob store key, content-addressed
	Size     int64     `json:"size"`   // bytes of the PS3.10 file as received
	SHA256   string    `json:"sha256"` // lower-case hex SHA-256 of the bytes as received
	Received time.Time `json:"received"`

	// Data, when set on an instance given to an index, is the object's
	// bytes, which the index keeps with the instance's entry until the
	// archive has moved them into the blob store (small objects, see
	// package archive): a store then needs one sync, not two. An index
	// never sets it on what it returns.
	Data []byte `json:"-"`
}

// Instance is one stored DICOM instance in the image index: the attributes
// that queries match and return, and the object holding its bytes.
type Instance struct {
	Study             Study  `json:"study"`
	Series            Series `json:"series"`
	SOPClassUID       string `json:"sop_class_uid"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	InstanceNumber    string `json:"instance_number"` // IS as sent, "" when absent
	Rows              int    `json:"rows"`
	Columns           int    `json:"columns"`
	BitsAllocated     int    `json:"bits_allocated"`
	NumberOfFrames    int    `json:"number_of_frames"` // 1 for single-frame images, 0 for non-images
	ImageLaterality   string `json:"image_laterality"` // (0020,0062): R, L, B or ""
	ViewPosition      string `json:"view_position"`    // (0018,5101): CC, MLO …
	TransferSyntaxUID string `json:"transfer_syntax_uid"`
	Object            Object `json:"object"`
}

// SeriesMatch is a series found by a search, with its study.
type SeriesMatch struct {
	Study  Study  `json:"study"`
	Series Series `json:"series"`
}

// ImageQuery selects studies, series or instances of the image index, after
// the QIDO-RS query keys of PS3.18 §10.6.1.2 and the matching rules of PS3.4
// C.2.2.2. Empty fields do not filter.
//
// String fields are matched exactly, except that * (any run of characters)
// and ? (one character) are wildcards; a value of only * matches everything.
// PatientName and ReferringPhysicianName match case-insensitively, as PS3.4
// C.2.2.2.1 allows for PN. List fields match any of their values. Ranges are
// inclusive and either end may be empty (open).
type ImageQuery struct {
	PatientID              string
	PatientName            string
	PatientBirthDate       Range
	StudyInstanceUIDs      []string
	StudyDate              Range // YYYYMMDD
	StudyTime              Range // HHMMSS
	AccessionNumber        string
	StudyID                string
	StudyDescription       string
	ReferringPhysicianName string
	ModalitiesInStudy      []string
	SeriesInstanceUIDs     []string
	Modalities             []string // Modality (0008,0060) of the series
	SeriesNumber           string
	SOPInstanceUIDs        []string
	SOPClassUIDs           []string
	InstanceNumber         string

	// Limit caps the number of matches returned (the store caps it at
	// MaxQueryLimit, and uses that when Limit is 0); Offset skips matches.
	Limit, Offset int
}

// MaxQueryLimit is the most matches one search returns.
const MaxQueryLimit = 1000

// Range is an inclusive range of DICOM dates (YYYYMMDD) or times (HHMMSS…),
// compared as strings. A zero Range matches everything; From == To is single
// value matching.
type Range struct {
	From, To string
}

// IsZero reports whether r does not filter.
func (r Range) IsZero() bool { return r.From == "" && r.To == "" }

// ImageIndex is the SQL index of a node's DICOM archive: what QIDO-RS
// searches and WADO-RS uses to find an instance's bytes. The bytes themselves
// live in a blob store, keyed by Instance.Object.Key.
//
// PutInstances indexes instances in one transaction and returns one error per
// instance: nil when the instance is indexed on return (newly, or because an
// instance with the same SOP Instance UID and the same SHA-256 already was:
// storing again is idempotent), an ECONFLICT error when the SOP Instance UID
// is indexed with other bytes or the study or series is indexed under another
// patient or study, an EINVALID error when a UID is missing. Instances
// without an error are durable when PutInstances returns a nil error; when it
// returns an error, none of them was indexed. Within one call, a later
// instance sees the earlier ones. The study's and series' attributes are
// those of their first instance indexed.
//
// Instance returns ENOTFOUND for an unknown SOP Instance UID. Instances
// returns the instances of a study, or of one series of it when seriesUID is
// not empty, series by series in the order indexed; ENOTFOUND when there are
// none. SearchStudies, SearchSeries and SearchInstances return matches in the
// order they were first indexed, at most the query's limit, and whether more
// matches exist beyond it. Studies and series in results carry their counts
// and modalities.
//
// ObjectReferenced reports whether any indexed instance refers to the blob
// key, so that unreferenced blobs can be swept.
//
// Implementations are safe for concurrent use; searches must stay fast
// (indexed) as the archive grows.
type ImageIndex interface {
	PutInstances(ctx context.Context, instances []Instance) ([]error, error)
	Instance(ctx context.Context, sopInstanceUID string) (Instance, error)
	Instances(ctx context.Context, studyUID, seriesUID string) ([]Instance, error)
	SearchStudies(ctx context.Context, q ImageQuery) ([]Study, bool, error)
	SearchSeries(ctx context.Context, q ImageQuery) ([]SeriesMatch, bool, error)
	SearchInstances(ctx context.Context, q ImageQuery) ([]Instance, bool, error)
	ObjectReferenced(ctx context.Context, key string) (bool, error)
}

// The kinds of AccessEvent recorded by the image archive.
const (
	AccessImageRead   = "image-read"   // images or their metadata were retrieved
	AccessImageSearch = "image-search" // a search returned a person's studies
)

// AccessEvent is one access to a person's data, as the transparency log
// records it: who, when, why, where, whose and what.
//
// An event of a kind for which AboutNoPerson holds (a feasibility count) is
// about no one person: its Person is empty and its What is published in
// the clear, so it must name nobody.
type AccessEvent struct {
	Time    time.Time `json:"time"`
	Actor   Principal `json:"actor"`
	Purpose Purpose   `json:"purpose"`
	Region  string    `json:"region"`    // the node's region, whose data were accessed
	Person  PersonID  `json:"person_id"` // whose data; the PatientID as stored when it is no valid personnummer
	Kind    string    `json:"kind"`      // AccessImageRead, AccessImageSearch …
	What    string    `json:"what"`      // the resource, e.g. "WADO-RS study 1.2.3"
}

// AboutNoPerson reports whether access events of the kind are about no one
// person: aggregate answers, recorded so that every use of the register is
// visible, which the log publishes with their description in the clear.
// Only kinds listed here may leave the person out, so that an event about
// a woman that lost its person by mistake is refused rather than published.
func AboutNoPerson(kind string) bool {
	return kind == AccessFeasibilityQuery
}

// AccessRecorder records accesses to persons' data before they are served.
//
// RecordAccess returns when the event is recorded durably, or recorded and
// covered by a durable event of the same actor, purpose, region, person and
// kind from less than a minute before, which then says the access happened
// while its own details reach the disk an instant later; an error means
// neither, and the caller must then not serve the data (fail closed). It is
// safe for concurrent use.
type AccessRecorder interface {
	RecordAccess(ctx context.Context, e AccessEvent) error
}
