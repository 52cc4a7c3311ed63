#!/usr/bin/env python3
"""bench_duckdb.py — deid's job as DuckDB SQL, for `make bench`.

  bench_duckdb.py run     --settings FILE --region CSV --out DIR [--threads 2] [--k 10] INPUT...
  bench_duckdb.py compare --settings FILE --region CSV --out DIR --deid-out DIR [--k 10] INPUT...

`run` is what the benchmark times (cmd/deid-bench runs it as a child process
and measures its wall time, CPU time and peak RSS): it reads the same NDJSON
partitions deid reads, applies deid's gates as SQL, builds the level-0 cells
of both default datasets with their measures and distinct counts, keeps the
cells with at least k distinct workspaces and k distinct creators (users),
and writes them to Parquet (Snappy) under --out. It prints one JSON line of
counts.

The gates, in deid's order (contract §3.7):
  * malformed (deid's dead letters): not an object, a required field absent
    or of the wrong JSON type, an empty or over-long id, an occurred_at that
    is not strict RFC 3339 or is more than 15 minutes ahead of now, a
    negative counter or one above 10^12, a creator_age outside 0..150, a
    team_size below 1. Malformed rows neither advance the watermark nor
    enter the dedup set.
  * late_event: the partition's watermark (newest earlier well-formed
    occurred_at - 10m) less the allowed lateness (1h), rounded down to a day,
    has reached the end of the row's day. Rows are numbered in file order
    with row_number() OVER () over one file's scan (DuckDB preserves
    insertion order), one scan per partition.
  * duplicate: an event_id already seen in the same partition and day among
    well-formed, non-late rows.
  * event type: only campaign.metrics and usage.interaction go on.
  * consent (contract §4, from the settings file as SQL): deleted is final; an
    opt-out always counts; an opt-in counts only when by owner or admin; a
    workspace without a record is excluded.
  * age: creator_age < 13, or 13..17 without guardian_consent = true.

`compare` (not timed) re-runs the same SQL to get per-workspace totals, then
checks the DuckDB cells against deid's published level-0 rows: every deid
level-0 row must be a DuckDB cell with equal measures, and every DuckDB cell
that deid did not publish at level 0 must fail deid's (n,k%) dominance or p%
rule (contract §7), which DuckDB's HAVING does not apply. It prints one JSON
object; "unexplained" must be 0.
"""
import argparse
import json
import os
import sys
import time

import duckdb

DAY_US = 86_400_000_000
OUT_OF_ORDER_US = 10 * 60 * 1_000_000
LATENESS_US = 60 * 60 * 1_000_000
FUTURE_SKEW = "15 minutes"
MAX_ID = 128
PLAUSIBLE_MAX = 10**12

CAMPAIGN_SUMS = ["impressions", "reach", "clicks", "engagements", "video_views",
                 "conversions", "spend_cents", "revenue_cents"]
CAMPAIGN_DIMS = ["platform", "content_type", "industry", "region", "follower_tier"]
USAGE_DIMS = ["feature", "action", "plan_tier", "team_size", "device_type"]
# Dominance measures of the default datasets (contract §6).
CAMPAIGN_DOM = ["spend_cents", "revenue_cents", "impressions", "conversions", "engagements"]
USAGE_DOM = ["events", "duration_ms_total"]

# The allowlisted fields, all read as JSON: read_json would otherwise cast
# "123" to 123 or 12.5 to 13 where deid sees a malformed record. A JSON
# value's text tells its type by its first byte, which is cheaper than
# json_type: a string starts with a quote, an integer is a number without
# '.', 'e' or 'E'.
ENVELOPE = ["event_id", "event_type", "occurred_at", "workspace_id", "user_id"]
CAMPAIGN_STR = ["campaign_id", "creator_id", "platform", "content_type", "industry", "audience_country"]
CAMPAIGN_INT = ["follower_count", "creator_age", "impressions", "reach", "clicks", "likes", "comments",
                "shares", "saves", "video_views", "conversions", "spend_cents", "revenue_cents"]
USAGE_STR = ["feature", "action", "plan_tier", "device_type"]
USAGE_INT = ["team_size", "duration_ms"]
PAYLOAD = CAMPAIGN_STR + CAMPAIGN_INT + ["guardian_consent"] + USAGE_STR + USAGE_INT
LENIENT_COLUMNS = ("{" + ", ".join(f"'{n}': 'VARCHAR'" for n in ENVELOPE) + ", 'payload': 'STRUCT("
                   + ", ".join(f"{n} VARCHAR" for n in CAMPAIGN_STR + USAGE_STR)
                   + ", " + ", ".join(f"{n} BIGINT" for n in CAMPAIGN_INT + USAGE_INT)
                   + ", guardian_consent BOOLEAN)'}")
COLUMNS = ("{" + ", ".join(f"'{n}': 'JSON'" for n in ENVELOPE)
           + ", 'payload': 'STRUCT(" + ", ".join(f"{n} JSON" for n in PAYLOAD) + ")'}")


def q(s):
    return "'" + s.replace("'", "''") + "'"


def s_val(r):
    """The string of JSON text r when it is a JSON string, else NULL."""
    return (f"CASE WHEN starts_with({r}, '\"') THEN CASE WHEN contains({r}, '\\') "
            f"THEN {r}::JSON ->> '$' ELSE {r}[2:-2] END END")


def i_val(r):
    """The integer of JSON text r when it is a JSON integer, else NULL (a
    string, boolean or null does not cast; a fraction or exponent would)."""
    return (f"CASE WHEN NOT (contains({r}, '.') OR contains({r}, 'e') OR contains({r}, 'E')) "
            f"THEN TRY_CAST({r} AS HUGEINT) END")


def nul(r):
    """JSON text r is absent or null."""
    return f"({r} IS NULL OR {r} = 'null')"


def closed(col, values):
    vs = ", ".join(q(v) for v in values)
    return f"CASE WHEN lower(trim({col})) IN ({vs}) THEN lower(trim({col})) ELSE 'other' END"


def open_dim(col):
    return f"CASE WHEN {col} IS NULL OR trim({col}) = '' THEN 'other' ELSE lower(trim({col})) END"


def gated_statements(inputs, settings, region, strict=True):
    """The SQL statements that make table ev: the rows that contribute, one
    per event, with their level-0 dimension values, measures and entity ids.
    Table wf (the well-formed rows) is made on the way: its values are
    computed once, where one statement would let the optimizer inline them
    into every filter that reads them.

    strict reads every allowlisted field as JSON and checks its JSON type as
    deid does; otherwise fields are read typed (VARCHAR, BIGINT, BOOLEAN) and
    DuckDB's casts decide: "123" counts as 123 and 12.5 as 13, where deid
    sees a malformed record."""
    columns = COLUMNS if strict else LENIENT_COLUMNS
    scans = "\n      UNION ALL\n".join(
        f"      SELECT {i} AS part, row_number() OVER () AS rn, * FROM read_json({q(f)}, "
        f"format = 'newline_delimited', columns = {columns}, ignore_errors = true)"
        for i, f in enumerate(inputs))
    if strict:
        raw = ",\n        ".join([f"{n}::VARCHAR AS r_{n}" for n in ENVELOPE]
                                + [f"payload.{n}::VARCHAR AS r_{n}" for n in PAYLOAD])
        vals = ",\n        ".join(
            [f"r_{n}" for n in ["user_id", "guardian_consent"] + CAMPAIGN_INT + USAGE_INT + CAMPAIGN_STR + USAGE_STR]
            + [f"{s_val('r_' + n)} AS {n}" for n in ENVELOPE + CAMPAIGN_STR + USAGE_STR]
            + [f"{i_val('r_' + n)} AS {n}" for n in CAMPAIGN_INT + USAGE_INT]
            + ["r_guardian_consent = 'true' AS guardian_consent"])

        def absent(n):
            return nul("r_" + n)
        guardian_ok = f"({absent('guardian_consent')} OR r_guardian_consent IN ('true', 'false'))"
        user_ok = f"({absent('user_id')} OR starts_with(r_user_id, '\"'))"
    else:
        raw = ",\n        ".join(ENVELOPE + [f"payload.{n} AS {n}" for n in PAYLOAD])
        vals = "* EXCLUDE (part, rn, has_payload)"

        def absent(n):
            return f"{n} IS NULL"
        guardian_ok = user_ok = "true"
    timestamp_re = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"

    def typed(names):
        # absent, null, or of the right type
        return [f"({absent(n)} OR {n} IS NOT NULL)" for n in names]

    def counters(names):
        return [f"({absent(n)} OR {n} BETWEEN 0 AND {PLAUSIBLE_MAX})" for n in names]

    campaign_ok = " AND ".join(
        [f"length({n}) BETWEEN 1 AND {MAX_ID}" for n in ("campaign_id", "creator_id")]
        + [f"follower_count BETWEEN 0 AND {PLAUSIBLE_MAX}",
           f"({absent('creator_age')} OR creator_age BETWEEN 0 AND 150)", guardian_ok]
        + counters([n for n in CAMPAIGN_INT if n not in ("follower_count", "creator_age")])
        + typed(CAMPAIGN_STR[2:]))
    usage_ok = " AND ".join(
        [f"team_size BETWEEN 1 AND {PLAUSIBLE_MAX}", "user_id IS NOT NULL"]
        + counters(["duration_ms"]) + typed(USAGE_STR))
    return [f"""
    CREATE OR REPLACE TEMP TABLE wf AS
    WITH src AS (
{scans}
    ), raw AS (
      SELECT part, rn, payload IS NOT NULL AS has_payload,
        {raw}
      FROM src
    ), val AS MATERIALIZED (
      SELECT part, rn, has_payload,
        {vals}
      FROM raw
    ), typed AS (
      SELECT * EXCLUDE (user_id), nullif(user_id, '') AS user_id,
        CASE WHEN event_type IN ('campaign.metrics', 'usage.interaction') THEN event_type
             WHEN lower(event_type) LIKE 'message.%' OR lower(event_type) = 'support.message' THEN 'message'
             ELSE 'unsupported' END AS kind,
        CASE WHEN regexp_full_match(occurred_at, '{timestamp_re}')
             THEN epoch_us(TRY_CAST(occurred_at AS TIMESTAMPTZ)) END AS t
      FROM val
    ), wellformed0 AS (
      SELECT *, t - (t % {DAY_US}) AS wstart FROM typed
    ), wellformed AS (
      SELECT * FROM wellformed0
      WHERE length(event_id) BETWEEN 1 AND {MAX_ID} AND length(event_type) BETWEEN 1 AND 128
        AND length(workspace_id) BETWEEN 1 AND {MAX_ID}
        AND {user_ok} AND coalesce(length(user_id), 0) <= {MAX_ID}
        AND has_payload AND t IS NOT NULL
        AND t <= epoch_us(now() + INTERVAL '{FUTURE_SKEW}')
        AND CASE kind WHEN 'campaign.metrics' THEN {campaign_ok}
                      WHEN 'usage.interaction' THEN {usage_ok}
                      ELSE true END
    )
    SELECT part, rn, t, wstart, kind, event_id, workspace_id, user_id, campaign_id, creator_id, platform, content_type, industry, audience_country, follower_count, creator_age, guardian_consent, impressions, reach, clicks, likes, comments, shares, saves, video_views, conversions, spend_cents, revenue_cents, feature, action, plan_tier, team_size, device_type, duration_ms FROM wellformed
    """, f"""
    CREATE OR REPLACE TEMP TABLE ev AS
    WITH closes AS (
      -- The first row (in file order) whose event time closes each day: a
      -- window ending at e closes once max(t) - 10m - 1h, rounded down to
      -- a day, reaches e (contract §5). Rows of a closed window after that row
      -- are late; the row itself is not (deid checks before it advances).
      SELECT part, (t - {OUT_OF_ORDER_US + LATENESS_US}) - ((t - {OUT_OF_ORDER_US + LATENESS_US}) % {DAY_US}) AS c,
        min(rn) AS first_rn
      FROM wf GROUP BY ALL
    ), ends AS (
      SELECT DISTINCT part, wstart + {DAY_US} AS e FROM wf
    ), closing AS (
      SELECT ends.part, ends.e, min(closes.first_rn) AS close_rn
      FROM ends JOIN closes ON closes.part = ends.part AND closes.c >= ends.e GROUP BY ALL
    ), ontime AS (
      SELECT w.* FROM wf w LEFT JOIN closing c ON c.part = w.part AND c.e = w.wstart + {DAY_US}
      WHERE c.close_rn IS NULL OR w.rn < c.close_rn
    ), dups AS (
      -- An event_id seen before in the same partition and day is a
      -- duplicate; the first one stays.
      SELECT part, wstart, event_id, min(rn) AS keep FROM ontime GROUP BY ALL HAVING count(*) > 1
    ), firsts AS (
      SELECT o.* FROM ontime o LEFT JOIN dups d USING (part, wstart, event_id)
      WHERE d.keep IS NULL OR o.rn = d.keep
    ), settings AS (
      SELECT row_number() OVER () AS ln, workspace_id ->> '$' AS ws,
        CASE WHEN json_type(ai_training_opt_out) = 'BOOLEAN' THEN ai_training_opt_out::BOOLEAN END AS oo,
        coalesce(CASE WHEN json_type(deleted) = 'BOOLEAN' THEN deleted::BOOLEAN END, false) AS del,
        updated_by_role ->> '$' AS role,
        json_type(workspace_id) = 'VARCHAR'
          AND (ai_training_opt_out IS NULL OR json_type(ai_training_opt_out) IN ('BOOLEAN', 'NULL'))
          AND (deleted IS NULL OR json_type(deleted) IN ('BOOLEAN', 'NULL'))
          AND (updated_by_role IS NULL OR json_type(updated_by_role) IN ('VARCHAR', 'NULL')) AS typed_ok
      FROM read_json({q(settings)}, format = 'newline_delimited', ignore_errors = true,
        columns = {{'workspace_id': 'JSON', 'ai_training_opt_out': 'JSON', 'deleted': 'JSON',
                   'updated_by_role': 'JSON'}})
    ), records AS (
      SELECT * FROM settings WHERE typed_ok AND ws <> '' AND (oo IS NOT NULL OR del)
    ), consent AS (
      SELECT ws, bool_or(del) AS deleted, max(ln) FILTER (WHERE oo) AS last_opt_out
      FROM records GROUP BY ws
    ), allowed AS (
      SELECT c.ws FROM consent c
      WHERE NOT c.deleted AND (c.last_opt_out IS NULL OR EXISTS (
        SELECT 1 FROM records r WHERE r.ws = c.ws AND r.ln > c.last_opt_out AND r.oo = false
          AND r.role IN ('owner', 'admin')))
    ), region AS (
      SELECT column0 AS country FROM read_csv({q(region)}, delim = ';', header = false, all_varchar = true)
    )
    SELECT f.kind, f.wstart, f.workspace_id, f.user_id, f.campaign_id, f.creator_id,
      {closed('f.platform', ['instagram', 'tiktok', 'x', 'linkedin', 'youtube'])} AS platform,
      {closed('f.content_type', ['post', 'reel', 'story', 'video', 'short', 'live', 'article'])} AS content_type,
      {open_dim('f.industry')} AS industry,
      coalesce(r.country, 'ZZ') AS region,
      CASE WHEN f.follower_count < 10000 THEN 'nano' WHEN f.follower_count < 100000 THEN 'micro'
           WHEN f.follower_count < 500000 THEN 'mid' WHEN f.follower_count < 1000000 THEN 'macro'
           ELSE 'mega' END AS follower_tier,
      coalesce(f.impressions, 0) AS impressions, coalesce(f.reach, 0) AS reach, coalesce(f.clicks, 0) AS clicks,
      coalesce(f.likes, 0) + coalesce(f.comments, 0) + coalesce(f.shares, 0) + coalesce(f.saves, 0) AS engagements,
      coalesce(f.video_views, 0) AS video_views, coalesce(f.conversions, 0) AS conversions,
      coalesce(f.spend_cents, 0) AS spend_cents, coalesce(f.revenue_cents, 0) AS revenue_cents,
      {open_dim('f.feature')} AS feature,
      {closed('f.action', ['view', 'click', 'create', 'update', 'delete', 'export'])} AS action,
      {closed('f.plan_tier', ['free', 'pro', 'business', 'enterprise'])} AS plan_tier,
      CASE WHEN f.team_size = 1 THEN '1' WHEN f.team_size <= 5 THEN '2-5' WHEN f.team_size <= 20 THEN '6-20'
           WHEN f.team_size <= 100 THEN '21-100' ELSE '101+' END AS team_size,
      {closed('f.device_type', ['desktop', 'mobile', 'tablet'])} AS device_type,
      coalesce(f.duration_ms, 0) AS duration_ms
    FROM firsts f LEFT JOIN region r ON r.country = upper(trim(f.audience_country))
    WHERE f.kind IN ('campaign.metrics', 'usage.interaction')
      AND f.workspace_id IN (SELECT ws FROM allowed)
      AND NOT (f.kind = 'campaign.metrics' AND f.creator_age IS NOT NULL
               AND (f.creator_age < 13 OR (f.creator_age <= 17 AND f.guardian_consent IS NOT TRUE)))
    """, "DROP TABLE wf"]


def cells_sql(k, per_workspace=False):
    """The level-0 cells of both datasets over table ev, with HAVING k."""
    ws_c = ", workspace_id" if per_workspace else ""
    having = "" if per_workspace else f"HAVING count(DISTINCT workspace_id) >= {k} AND count(DISTINCT {{ent}}) >= {k}"
    campaign = f"""
      SELECT make_timestamptz(wstart) AS window_start, {', '.join(CAMPAIGN_DIMS)}{ws_c},
        count(*) AS events, count(DISTINCT campaign_id) AS campaigns, count(DISTINCT workspace_id) AS workspaces,
        count(DISTINCT creator_id) AS creators, {', '.join(f'sum({m})::BIGINT AS {m}' for m in CAMPAIGN_SUMS)}
      FROM ev WHERE kind = 'campaign.metrics'
      GROUP BY ALL {having.format(ent='creator_id')}"""
    usage = f"""
      SELECT make_timestamptz(wstart) AS window_start, {', '.join(USAGE_DIMS)}{ws_c},
        count(*) AS events, count(DISTINCT workspace_id) AS workspaces, count(DISTINCT user_id) AS users,
        sum(duration_ms)::BIGINT AS duration_ms_total
      FROM ev WHERE kind = 'usage.interaction'
      GROUP BY ALL {having.format(ent='user_id')}"""
    return {"campaign_metrics": campaign, "usage_patterns": usage}


def connect(threads):
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    return con


def cmd_run(a):
    t0 = time.time()
    con = connect(a.threads)
    os.makedirs(a.out, exist_ok=True)
    for stmt in gated_statements(a.inputs, a.settings, a.region, strict=not a.lenient):
        con.execute(stmt)
    out = {"contributed": con.execute("SELECT count(*) FROM ev").fetchone()[0]}
    for name, sql in cells_sql(a.k).items():
        path = os.path.join(a.out, name + ".parquet")
        dims = CAMPAIGN_DIMS if name == "campaign_metrics" else USAGE_DIMS
        con.execute(f"COPY ({sql} ORDER BY window_start, {', '.join(dims)}) TO {q(path)} "
                    "(FORMAT parquet, COMPRESSION snappy)")
        out[name + "_cells"] = con.execute(f"SELECT count(*) FROM read_parquet({q(path)})").fetchone()[0]
    out["seconds"] = round(time.time() - t0, 3)
    print(json.dumps(out))


def dominance_sql(name, key_cols, n, kdom, p):
    """Per cell, whether it fails deid's (n,k%) dominance or p% rule (contract
    §7) on the per-workspace totals of table pw."""
    dom = CAMPAIGN_DOM if name == "campaign_metrics" else USAGE_DOM
    keys = ", ".join(key_cols)
    aggs, conds = [], []
    for i, m in enumerate(dom):
        aggs.append(f"sum({m})::HUGEINT AS x{i}, list({m}::HUGEINT ORDER BY {m} DESC) AS l{i}")
        top1, top2 = f"coalesce(l{i}[1], 0)", f"coalesce(l{i}[2], 0)"
        conds.append(f"(x{i} > 0 AND (100 * coalesce(list_sum(l{i}[1:{n}]), 0) > {kdom} * x{i}"
                     f" OR 100 * (x{i} - {top1} - {top2}) < {p} * {top1}))")
    return f"SELECT {keys}, {' OR '.join(conds)} AS fails FROM (SELECT {keys}, {', '.join(aggs)} FROM pw GROUP BY {keys})"


def cmd_compare(a):
    con = connect(a.threads)
    for stmt in gated_statements(a.inputs, a.settings, a.region, strict=not a.lenient):
        con.execute(stmt)
    report = {"datasets": {}}
    unexplained = 0
    for name, pw_sql in cells_sql(a.k, per_workspace=True).items():
        dims = CAMPAIGN_DIMS if name == "campaign_metrics" else USAGE_DIMS
        key_cols = ["window_start"] + dims
        measures = (["events", "campaigns", "workspaces", "creators"] + CAMPAIGN_SUMS
                    if name == "campaign_metrics" else ["events", "workspaces", "users", "duration_ms_total"])
        con.execute(f"CREATE OR REPLACE TEMP TABLE pw AS {pw_sql}")
        duck = os.path.join(a.out, name + ".parquet")
        con.execute(f"CREATE OR REPLACE TEMP TABLE duck AS SELECT * FROM read_parquet({q(duck)})")
        deid_glob = os.path.join(a.deid_out, "datasets", name, "**", "*.parquet")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE deid AS SELECT {', '.join(key_cols + measures)}
            FROM read_parquet({q(deid_glob)}, hive_partitioning = false) WHERE generalization_level = 0""")
        on = " AND ".join(f"d.{c} = x.{c}" for c in key_cols)
        both = con.execute(f"SELECT count(*) FROM deid d JOIN duck x ON {on}").fetchone()[0]
        diff = con.execute(f"""SELECT count(*) FROM deid d JOIN duck x ON {on}
            WHERE {' OR '.join(f'd.{m} IS DISTINCT FROM x.{m}' for m in measures)}""").fetchone()[0]
        deid_only = con.execute(f"SELECT count(*) FROM deid d ANTI JOIN duck x ON {on}").fetchone()[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE duck_only AS SELECT x.* FROM duck x ANTI JOIN deid d ON {on}")
        duck_only = con.execute("SELECT count(*) FROM duck_only").fetchone()[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE dom AS "
                    f"{dominance_sql(name, key_cols, a.dominance_n, a.dominance_k, a.p_percent)}")
        join_dom = f"duck_only c JOIN dom ON {' AND '.join(f'c.{k} = dom.{k}' for k in key_cols)}"
        explained = con.execute(f"SELECT count(*) FROM {join_dom} WHERE dom.fails").fetchone()[0]
        # Cells DuckDB dropped by HAVING k that deid published at level 0 would be deid_only.
        ds = {"deid_level0_rows": con.execute("SELECT count(*) FROM deid").fetchone()[0],
              "duckdb_cells": con.execute("SELECT count(*) FROM duck").fetchone()[0],
              "equal": both - diff, "measures_differ": diff, "deid_only": deid_only,
              "duckdb_only": duck_only, "duckdb_only_failing_dominance_or_p": explained,
              "unexplained": diff + deid_only + (duck_only - explained)}
        if ds["unexplained"]:
            ds["examples"] = [dict(zip([c[0] for c in con.description], r)) for r in con.execute(
                f"SELECT COLUMNS(c.*)::VARCHAR FROM duck_only c ANTI JOIN (SELECT dom.* FROM {join_dom} WHERE dom.fails) e "
                f"ON {' AND '.join(f'c.{k} = e.{k}' for k in key_cols)} LIMIT 3").fetchall()]
            for e in ds["examples"]:
                for kk, v in e.items():
                    e[kk] = str(v)
        unexplained += ds["unexplained"]
        report["datasets"][name] = ds
    report["unexplained"] = unexplained
    print(json.dumps(report, default=str))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "compare"):
        s = sub.add_parser(name)
        s.add_argument("--settings", required=True)
        s.add_argument("--region", required=True, help="deid's region.csv (country;continent;*)")
        s.add_argument("--out", required=True, help="DuckDB's output directory")
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--k", type=int, default=10)
        s.add_argument("--lenient", action="store_true",
                       help="read fields typed and let DuckDB's casts decide (faster; not deid's malformed rules)")
        s.add_argument("inputs", nargs="+")
        if name == "compare":
            s.add_argument("--deid-out", required=True)
            s.add_argument("--dominance-n", type=int, default=2)
            s.add_argument("--dominance-k", type=int, default=85)
            s.add_argument("--p-percent", type=int, default=10)
    a = ap.parse_args()
    {"run": cmd_run, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
