package proto

// Terminal reports whether a run in status s has ended. A terminal run never changes status again.
func Terminal(s Status) bool {
	switch s {
	case Status_SUCCEEDED, Status_FAILED, Status_CANCELED, Status_ERROR, Status_TIMEOUT:
		return true
	}
	return false
}
