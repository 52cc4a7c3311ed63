// Package agegate excludes the data of children (contract §3.4, promise P5).
//
// A campaign event whose creator is under 13 is excluded with
// ReasonMinorUnder13; one whose creator is 13 to 17 without guardian consent
// with ReasonMinorWithoutGuardianConsent. An event without an age passes: the
// platform verifies age at sign-up. Events of other kinds carry no age and
// pass.
package agegate
