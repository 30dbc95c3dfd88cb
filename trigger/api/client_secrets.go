package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// SetSecret sets the secret name to value.
func (c *Client) SetSecret(ctx context.Context, name string, value []byte) error {
	resp, err := c.do(ctx, http.MethodPut, "/v1/secrets/"+url.PathEscape(name), bytes.NewReader(value), "application/octet-stream")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ListSecrets returns every secret's name and when it was set.
func (c *Client) ListSecrets(ctx context.Context) ([]Secret, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/secrets", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list secretList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRequestPart)).Decode(&list); err != nil {
		return nil, fmt.Errorf("reading the secrets in the answer: %w", err)
	}
	return list.Secrets, nil
}

// DeleteSecret deletes the secret name.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
