package main

import (
	"context"
	"flag"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func (s *session) printKeys(keys []*adminv1.SigningKey) error {
	if s.out.json {
		return array(s.out, keys)
	}
	rows := make([][]string, len(keys))
	for i, k := range keys {
		state := "published"
		if k.GetActive() {
			state = "active"
		}
		rows[i] = []string{k.GetKid(), k.GetAlg(), state, s.out.ago(k.GetCreatedAt(), "-"),
			s.out.ago(k.GetRetiredAt(), "-"), s.out.ago(k.GetRemoveAfter(), "-")}
	}
	return s.out.table([]string{"KID", "ALG", "STATE", "CREATED", "RETIRED", "LEAVES JWKS"}, rows)
}

func keysCommands() []*command {
	return []*command{
		{
			path: "keys list", maxArgs: 0,
			summary: "list the session-JWT signing keys (public parts only)",
			help: `Lists the signing keys published in the JWKS: the active one, which signs new
session JWTs, and the retired ones, kept until every JWT they signed has
expired ("leaves JWKS").`,
			example: `gatehouse keys list`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.ListSigningKeys(ctx, &adminv1.ListSigningKeysRequest{})
					if err != nil {
						return err
					}
					return s.printKeys(resp.GetKeys())
				}
			},
		},
		{
			path: "keys rotate", maxArgs: 0,
			summary: "make a new signing key the active one",
			help: `Generates a new signing key and makes it the active one. The previous key stops
signing but stays in the JWKS until the JWTs it signed have expired, so
verifiers that cache the JWKS keep working. Prints the keys afterwards.`,
			example: `gatehouse keys rotate
gatehouse keys rotate --alg ES256`,
			define: func(fs *flag.FlagSet) action {
				alg := fs.String("alg", "", "the new key's `algorithm`: RS256, ES256 or EdDSA (default RS256)")
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.RotateSigningKeys(ctx, &adminv1.RotateSigningKeysRequest{Alg: *alg})
					if err != nil {
						return err
					}
					return s.printKeys(resp.GetKeys())
				}
			},
		},
	}
}
