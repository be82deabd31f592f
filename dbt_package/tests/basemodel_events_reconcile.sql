-- Every source row is either a staged event or a rejected row, never both and
-- never neither, compared by row identity (source_row_id), not by counts: a
-- row staged twice and another missing would add up but fail here. A staged
-- row that is no longer in the source fails too (the source was rewritten
-- after an incremental run: run with --full-refresh).
with placements as (
    select source_row_id, 1 as in_source, 0 as staged, 0 as rejected
    from ({{ basemodel.parsed_events() }}) as source_rows
    union all
    select source_row_id, 0, 1, 0 from {{ ref('basemodel_stg_events') }}
    union all
    select source_row_id, 0, 0, 1 from {{ ref('basemodel_rejected_events') }}
)

select
    source_row_id,
    sum(in_source) as times_in_source,
    sum(staged) as times_staged,
    sum(rejected) as times_rejected
from placements
group by source_row_id
having sum(in_source) <> 1 or sum(staged) + sum(rejected) <> 1
