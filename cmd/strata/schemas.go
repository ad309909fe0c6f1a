package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mq/strata/client"
)

func newSchemasCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "A topic's schema registry: get, list, upload, delete, check compatibility",
		Long: `A topic's schema registry, as Pulsar's. A topic keeps numbered versions of its
schema (a partitioned topic's partitions share one); producers that declare a
schema get the version of an identical one or add theirs when the namespace's
compatibility strategy allows (strata namespaces set-policy
--schema-compatibility, FULL by default). For AVRO and JSON the definition is
an Avro schema (JSON text).`,
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(schemasGetCmd(&url), schemasListCmd(&url), schemasUploadCmd(&url), schemasDeleteCmd(&url), schemasCompatibilityCmd(&url))
	return cmd
}

func schemasGetCmd(url *string) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "get TOPIC [--version N]",
		Short: "Print a topic's latest schema, or one version, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			var s client.SchemaInfo
			var err error
			if version >= 0 {
				s, err = a.GetSchemaVersion(cmd.Context(), args[0], uint64(version))
			} else {
				s, err = a.GetSchema(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), s)
		}),
	}
	cmd.Flags().Int64Var(&version, "version", -1, "the version to print (default: the latest)")
	return cmd
}

func schemasListCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list TOPIC",
		Short: "Print every version of a topic's schema, deletions included, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			all, err := a.ListSchemas(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), nonNil(all))
		}),
	}
}

// schemaFlags are the flags that describe a schema.
type schemaFlags struct {
	typ, file  string
	properties []string
}

func (sf *schemaFlags) register(f *pflag.FlagSet, prefix string) {
	f.StringVar(&sf.typ, prefix+"type", "", "schema type: bytes, string, json, avro or protobuf")
	f.StringVar(&sf.file, prefix+"file", "", "file holding the schema definition (for json and avro, an Avro schema)")
	f.StringSliceVar(&sf.properties, prefix+"property", nil, "schema property KEY=VALUE (repeatable)")
}

// schema answers the schema the flags describe (nil when no type is given).
func (sf *schemaFlags) schema(prefix string) (*client.Schema, error) {
	if sf.typ == "" {
		if sf.file != "" || len(sf.properties) > 0 {
			return nil, fmt.Errorf("--%sfile and --%sproperty need --%stype", prefix, prefix, prefix)
		}
		return nil, nil
	}
	s := &client.Schema{Type: client.SchemaType(strings.ToUpper(sf.typ))}
	if sf.file != "" {
		def, err := os.ReadFile(sf.file)
		if err != nil {
			return nil, err
		}
		s.Definition = string(def)
	}
	for _, kv := range sf.properties {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%sproperty %q: want KEY=VALUE", prefix, kv)
		}
		if s.Properties == nil {
			s.Properties = map[string]string{}
		}
		s.Properties[k] = v
	}
	return s, nil
}

// required answers the schema the flags describe, which must have a type.
func (sf *schemaFlags) required() (*client.Schema, error) {
	s, err := sf.schema("")
	if err == nil && s == nil {
		err = fmt.Errorf("--type is required")
	}
	return s, err
}

func schemasUploadCmd(url *string) *cobra.Command {
	var sf schemaFlags
	cmd := &cobra.Command{
		Use:   "upload TOPIC --type TYPE [--file F]",
		Short: "Add a version of a topic's schema (checked against the namespace's compatibility strategy)",
		Long: `Add a version of a topic's schema, as Pulsar's schemas upload. It is checked
against the namespace's compatibility strategy like a producer's, and allowed
even where the namespace lets only admins add versions
(--schema-auto-update=false). An identical version prints its number.`,
		Example: `  strata schemas upload orders --type avro --file order.avsc`,
		Args:    cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			s, err := sf.required()
			if err != nil {
				return err
			}
			v, err := a.CreateSchema(cmd.Context(), args[0], *s)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema version %d\n", v)
			return nil
		}),
	}
	sf.register(cmd.Flags(), "")
	return cmd
}

func schemasDeleteCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOPIC",
		Short: "Leave a topic without a schema (a deletion version; versions are never reused)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			v, err := a.DeleteSchema(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema deleted (version %d)\n", v)
			return nil
		}),
	}
}

func schemasCompatibilityCmd(url *string) *cobra.Command {
	var sf schemaFlags
	cmd := &cobra.Command{
		Use:   "compatibility TOPIC --type TYPE [--file F]",
		Short: "Check whether a schema could be added to a topic; exits 1 when it could not",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			s, err := sf.required()
			if err != nil {
				return err
			}
			c, err := a.TestSchemaCompatibility(cmd.Context(), args[0], *s)
			if err != nil {
				return err
			}
			if err := writeJSON(cmd.OutOrStdout(), c); err != nil {
				return err
			}
			if !c.Compatible {
				return fmt.Errorf("not compatible under %s: %s", c.Strategy, c.Reason)
			}
			return nil
		}),
	}
	sf.register(cmd.Flags(), "")
	return cmd
}
