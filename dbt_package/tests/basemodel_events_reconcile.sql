-- Every source row is either a staged event or a rejected row, never both and
-- never neither: the counts must add up. (Staged and rejected rows come from
-- the same classification, so a mismatch means incremental runs missed late
-- source rows: run with --full-refresh, or set basemodel_loaded_at_column.)
with counts as (
    select
        (select count(*) from {{ source('basemodel', 'events') }}) as source_rows,
        (select count(*) from {{ ref('basemodel_stg_events') }}) as staged_events,
        (select count(*) from {{ ref('basemodel_rejected_events') }}) as rejected_rows
)

select *
from counts
where source_rows <> staged_events + rejected_rows
