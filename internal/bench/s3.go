package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mya/deid/sinks/objstore"
)

// DeidS3 is deid in file mode writing its output to s3:// on the local S3
// server, beside Deid writing to a directory.
const DeidS3 = "deid_s3"

// s3Out is where the DeidS3 contender writes: a bucket of its own on the
// local server, and the config that reaches it.
type s3Out struct {
	config string // a YAML file with the storage block
	bucket string
	store  objstore.Config
}

// prepareS3 creates a bucket for the run on the S3-compatible server at
// endpoint (credentials and region from the AWS environment, as
// scripts/s3-local.sh env exports them) and writes deid's config for it.
func prepareS3(ctx context.Context, endpoint, work string) (*s3Out, error) {
	var r [6]byte
	rand.Read(r[:])
	o := &s3Out{bucket: "deid-bench-" + hex.EncodeToString(r[:]), config: filepath.Join(work, "s3.yaml")}
	o.store = objstore.DefaultConfig()
	o.store.S3.Endpoint, o.store.S3.ForcePathStyle = endpoint, true
	ac, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	if ac.Region == "" {
		ac.Region = "us-east-1"
	}
	o.store.S3.Region = ac.Region
	client := s3.NewFromConfig(ac, func(so *s3.Options) { so.BaseEndpoint, so.UsePathStyle = aws.String(endpoint), true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &o.bucket}); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return nil, fmt.Errorf("creating bucket %s on %s: %w", o.bucket, endpoint, err)
		}
	}
	yaml := fmt.Sprintf("storage:\n  s3:\n    endpoint: %s\n    region: %s\n    force_path_style: true\n", endpoint, ac.Region)
	if err := os.WriteFile(o.config, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	return o, nil
}

// out is the s3:// output of run rep.
func (o *s3Out) out(rep int) string { return fmt.Sprintf("s3://%s/run-%d", o.bucket, rep) }

// remove deletes run rep's output, so that the server's disk does not grow
// with the runs.
func (o *s3Out) remove(ctx context.Context, rep int) error { return o.removeAll(ctx, o.out(rep)) }

// removeAll deletes every object under the s3:// URL root.
func (o *s3Out) removeAll(ctx context.Context, root string) error {
	st, err := objstore.Open(root, o.store)
	if err != nil {
		return err
	}
	infos, err := st.List(ctx, "")
	if err != nil {
		return err
	}
	for _, in := range infos {
		if err := st.Delete(ctx, in.Key); err != nil {
			return err
		}
	}
	return nil
}
