package decode

import (
	"fmt"

	"github.com/mya/deid/pipeline"
)

// Codes of the *pipeline.MalformedError values Decode returns (contract §3.1).
// They are stable: dead letters and metrics carry them.
const (
	// CodeInvalidJSON: the record is not one valid JSON object, has data
	// after it, or nests deeper than Config.MaxDepth. It takes precedence
	// over every other code.
	CodeInvalidJSON = "invalid_json"
	// CodeMissingField: a required field is absent or null.
	CodeMissingField = "missing_field"
	// CodeWrongType: a field has the wrong JSON type, or a counter is not an
	// integer (it has a fraction or an exponent).
	CodeWrongType = "wrong_type"
	// CodeInvalidValue: a field's value is out of its domain: an empty id,
	// invalid UTF-8 in a string, a negative creator_age, a team_size below 1.
	CodeInvalidValue = "invalid_value"
	// CodeNegativeCounter: a counter is below zero.
	CodeNegativeCounter = "negative_counter"
	// CodeImplausibleCounter: a counter is above 10^12 (contract §3.6).
	CodeImplausibleCounter = "implausible_counter"
	// CodeInvalidTimestamp: occurred_at is not an RFC 3339 timestamp.
	CodeInvalidTimestamp = "invalid_timestamp"
	// CodeTooLong: an id or dimension string exceeds its bound.
	CodeTooLong = "too_long"
	// CodeDuplicateField: an allowlisted field appears twice in one object;
	// which one to believe is ambiguous, so neither is.
	CodeDuplicateField = "duplicate_field"
)

// fail records the first semantic problem of the record. Decoding goes on,
// so that a record that is also invalid JSON is reported as invalid_json.
// Details name the rule broken, never the value: it may be personal data.
func (d *Decoder) fail(code, field, detail string) {
	if d.err == nil {
		d.err = &pipeline.MalformedError{Code: code, Field: field, Detail: detail}
	}
}

// invalidJSON builds the error of a record that is not valid JSON at byte at.
func (d *Decoder) invalidJSON(b []byte, at int) *pipeline.MalformedError {
	var detail string
	switch {
	case d.tooDeep:
		detail = fmt.Sprintf("nested deeper than %d levels at byte %d", d.cfg.MaxDepth, at)
	case at >= len(b):
		detail = "unexpected end of input"
	default:
		detail = fmt.Sprintf("unexpected byte at offset %d", at)
	}
	return &pipeline.MalformedError{Code: CodeInvalidJSON, Detail: detail}
}
