package proto

// The JetStream streams, buckets and subjects Kiln uses. Triggers publish on them and workers consume from
// them; nothing else links the two.
const (
	// StreamRuns holds RunRequested events until a worker acknowledges them.
	StreamRuns = "KILN_RUNS"
	// SubjectRunRequested carries a RunRequested for every run a trigger creates.
	SubjectRunRequested = "kiln.runs.requested"
	// ConsumerWorkers is the durable consumer every worker process pulls runs from.
	ConsumerWorkers = "workers"

	// StreamLogs holds the log chunks of runs while they are written, one subject per run.
	StreamLogs = "KILN_LOGS"
	// subjectLogPrefix starts the subject of a run's log chunks; LogSubject completes it.
	subjectLogPrefix = "kiln.logs."

	// StreamStatus holds RunStatusChanged events, for the reporters that tell other systems how runs went.
	StreamStatus = "KILN_STATUS"
	// subjectStatusPrefix starts the subject of a run's status changes; StatusSubject completes it.
	subjectStatusPrefix = "kiln.status."
	// SubjectStatusAll matches every run's status subject.
	SubjectStatusAll = subjectStatusPrefix + "*"

	// StreamImages holds ImagePushed events: a tag that now points to a digest, from a run's push, a registry's
	// notification or the poller.
	StreamImages = "KILN_IMAGES"
	// SubjectImagePushed carries every ImagePushed.
	SubjectImagePushed = "kiln.images.pushed"
	// ConsumerBaseWatch is the durable consumer the base image watchers share.
	ConsumerBaseWatch = "basewatch"
	// ConsumerBaseRuns is the durable consumer on StreamStatus through which the watchers learn what each run
	// of a task built on.
	ConsumerBaseRuns = "basewatch-runs"

	// subjectCancelPrefix starts the core NATS subject a cancel is announced on; CancelSubject completes it.
	subjectCancelPrefix = "kiln.cancel."
	// SubjectCancelAll matches every run's cancel subject; workers subscribe to it once.
	SubjectCancelAll = subjectCancelPrefix + "*"
)

// LogSubject is the subject a run's log chunks are published on.
func LogSubject(runID string) string { return subjectLogPrefix + runID }

// StatusSubject is the subject a run's RunStatusChanged events are published on.
func StatusSubject(runID string) string { return subjectStatusPrefix + runID }

// CancelSubject is the core NATS subject a cancel of the run is announced on.
func CancelSubject(runID string) string { return subjectCancelPrefix + runID }

// RunIDFromCancelSubject returns the run ID a cancel subject names, or "" when subject is not one.
func RunIDFromCancelSubject(subject string) string {
	if len(subject) <= len(subjectCancelPrefix) || subject[:len(subjectCancelPrefix)] != subjectCancelPrefix {
		return ""
	}
	return subject[len(subjectCancelPrefix):]
}
