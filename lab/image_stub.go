package lab

// Temporary stand-in until the image store lands (removed at its merge).

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
)

type Images struct {
	Dir      string
	Progress io.Writer
	Terminal bool
}

type ImageInfo struct{ Path string }

type UnknownImageError struct {
	Name      string
	Available []string
}

func (e *UnknownImageError) Error() string { return "unknown image " + e.Name }

func DefaultImageDir() string { return filepath.Join(CacheDir(), "images") }

func (s *Images) Build(ctx context.Context, profile string) (string, error) {
	return "", errors.New("not yet")
}
func (s *Images) List() ([]ImageInfo, error) { return nil, nil }
func (s *Images) Ensure(ctx context.Context, name string) (string, error) {
	if p := os.Getenv("UMLAB_IMAGE"); p != "" {
		return p, nil
	}
	return "", errors.New("no image")
}
