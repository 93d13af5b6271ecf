package hetzner_test

import v1 "github.com/google/go-containerregistry/pkg/v1"

type v1Image = v1.Image
