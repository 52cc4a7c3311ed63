package verify

import (
	"fmt"
	"os"

	"github.com/mya/deid/sinks/signing"
)

// checkSignatures checks the signature of every manifest and every
// segment with the public key given, or says what signing there is.
func (v *verifier) checkSignatures() error {
	const sec = SectionSignatures
	type signed struct{ path, sum string }
	var items []signed
	for _, w := range v.windows() {
		sum, _, err := hashFile(w.Path)
		if err == nil {
			items = append(items, signed{w.Path, sum})
		}
	}
	manifests := len(items)
	for _, c := range v.out.Chains {
		if c.Report == nil {
			continue
		}
		for _, s := range c.Report.Segments {
			items = append(items, signed{s.Path, s.SHA256})
		}
	}
	present := 0
	for _, it := range items {
		if _, err := os.Stat(it.path + signing.Suffix); err == nil {
			present++
		}
	}
	segments := len(items) - manifests
	v.r.Summary.Signed = present
	if v.opts.PublicKey == nil {
		switch {
		case present == 0:
			v.r.note(sec, "the exclusion log is hash-chained but unsigned: no signing key was configured when it was written, so the chains prove the log was not edited after its heads were recorded, but not who wrote it (configure secrets.signing_key_file, then verify with --public-key)")
		default:
			v.r.note(sec, fmt.Sprintf("%d of %d manifests and segments carry a signature, not checked: pass --public-key FILE to check them", present, len(items)))
		}
		return nil
	}
	var problems []string
	for _, it := range items {
		rel := v.out.rel(it.path)
		b, err := os.ReadFile(it.path + signing.Suffix)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: unsigned (%s%s %s)", rel, baseName(it.path), signing.Suffix, errText(err)))
			continue
		}
		if err := signing.Verify(v.opts.PublicKey, b, rel, it.sum); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rel, err))
		}
	}
	v.r.add(sec, problems,
		fmt.Sprintf("all %d manifests and %d exclusion-log segments carry a valid ed25519 signature by key %s", manifests, segments, signing.KeyID(v.opts.PublicKey)),
		fmt.Sprintf("%d of %d manifests and segments are unsigned or their signature does not verify with key %s",
			len(problems), len(items), signing.KeyID(v.opts.PublicKey)))
	return nil
}
