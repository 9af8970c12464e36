/* SPDX-License-Identifier: MIT */
/*
 * Building the metadata group's commands and decoding their names and
 * argument tables (see meta_cmd.h).
 */
#include "broker/cluster/meta_cmd.h"

#include <stdlib.h>
#include <string.h>

#include "core/hex.h"

static json_t *hex_json(wr_bytes_t b)
{
    char *s = malloc(2 * b.len + 1);
    json_t *j;

    if (s == NULL)
        return NULL;
    wr_hex_encode(b.data, b.len, s);
    j = json_string(s);
    free(s);
    return j;
}

json_t *wr_meta_name_json(wr_bytes_t name)
{
    json_t *j = json_stringn((const char *)name.data, name.len);

    return j != NULL ? j : json_pack("{s:o}", "hex", hex_json(name));
}

/* {"vhost", "op", "entry"}; takes entry, NULL when it is NULL. */
static json_t *record(const char *vhost, const char *op, json_t *entry)
{
    if (entry == NULL)
        return NULL;
    return json_pack("{s:s,s:s,s:o}", "vhost", vhost, "op", op, "entry", entry);
}

json_t *wr_meta_cmd_defs(const char *op, const char *vhost, json_t *entry)
{
    return record(vhost, op, entry);
}

json_t *wr_meta_cmd_exchange_declare(const char *vhost, wr_bytes_t name, const wr_exchange_opts_t *o)
{
    return record(vhost, "exchange.declare",
                  json_pack("{s:o,s:s,s:b,s:b,s:b,s:o}", "name", wr_meta_name_json(name), "type",
                            wr_router_type_name(o->type), "durable", o->durable, "auto_delete",
                            o->auto_delete, "internal", o->internal, "arguments", hex_json(o->args)));
}

json_t *wr_meta_cmd_exchange_delete(const char *vhost, wr_bytes_t name, bool if_unused)
{
    return record(vhost, "exchange.delete",
                  json_pack("{s:o,s:b}", "name", wr_meta_name_json(name), "if_unused", if_unused));
}

json_t *wr_meta_cmd_queue_declare(const char *vhost, wr_bytes_t name, const wr_queue_args_decl_t *d,
                                  const char *home)
{
    return record(vhost, "queue.declare",
                  json_pack("{s:o,s:b,s:b,s:o,s:s}", "name", wr_meta_name_json(name), "durable", d->durable,
                            "auto_delete", d->auto_delete, "arguments", hex_json(d->args), "home", home));
}

json_t *wr_meta_cmd_queue_delete(const char *vhost, wr_bytes_t name)
{
    return record(vhost, "queue.delete", json_pack("{s:o}", "name", wr_meta_name_json(name)));
}

json_t *wr_meta_cmd_binding(const char *vhost, bool bind, wr_bytes_t source, wr_dest_kind_t kind,
                            wr_bytes_t dest, wr_bytes_t key, wr_bytes_t args)
{
    return record(vhost, bind ? "bind" : "unbind",
                  json_pack("{s:o,s:o,s:s,s:o,s:o}", "source", wr_meta_name_json(source), "destination",
                            wr_meta_name_json(dest), "destination_type",
                            kind == WR_DEST_QUEUE ? "queue" : "exchange", "routing_key",
                            wr_meta_name_json(key), "arguments", hex_json(args)));
}

bool wr_meta_name_decode(const json_t *v, wr_bytes_t *out, uint8_t buf[WR_META_NAME_MAX])
{
    const char *hex;
    size_t len;

    if (json_is_string(v)) {
        len = json_string_length(v);
        if (len > WR_META_NAME_MAX)
            return false;
        memcpy(buf, json_string_value(v), len);
    } else {
        hex = json_string_value(json_object_get(v, "hex"));
        if (hex == NULL || strlen(hex) > 2 * WR_META_NAME_MAX || !wr_hex_decode(hex, strlen(hex), buf))
            return false;
        len = strlen(hex) / 2;
    }
    *out = (wr_bytes_t){buf, len};
    return true;
}

bool wr_meta_name_get(const json_t *obj, const char *key, wr_bytes_t *out, uint8_t buf[WR_META_NAME_MAX])
{
    return wr_meta_name_decode(json_object_get(obj, key), out, buf);
}

bool wr_meta_args_get(const json_t *obj, wr_bytes_t *out, uint8_t **buf)
{
    const char *s = json_string_value(json_object_get(obj, "arguments"));
    size_t n = s != NULL ? strlen(s) : 0;

    *buf = NULL;
    if (s == NULL || (*buf = malloc(n / 2 + 1)) == NULL || !wr_hex_decode(s, n, *buf))
        return false;
    *out = (wr_bytes_t){*buf, n / 2};
    return true;
}
