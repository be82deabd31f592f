{#-
  Every row of the source events relation exactly once: typed, given an
  event_id, and with `rejection_reason` NULL for the events to keep or the
  first reason that applies otherwise:

    null_entity, null_event_id, null_timestamp, unparseable_timestamp,
    timestamp_before_valid_range, timestamp_after_valid_range,
    null_event_type, unparseable_amount, duplicate

  basemodel_stg_events keeps the rows without a reason and
  basemodel_rejected_events the others, so the two always add up to the
  source. `where` (a condition on the typed columns, e.g. event_at) limits the
  rows read for incremental runs; duplicates are then found within them.
-#}
{% macro parsed_events(where=none) %}
  {%- set s = basemodel.settings() -%}
  {%- set string = dbt.type_string() -%}
  {%- set timestamp = dbt.type_timestamp() -%}
  {%- set known = ['event_id', 'entity_id', 'event_at', 'event_type', 'group_id', 'amount', 'loaded_at',
                   'rejection_reason', 'raw_entity', 'raw_timestamp', 'raw_event_type', 'raw_amount']
                  + (s.item_columns | map(attribute='name') | list) -%}
  {%- for column in s.passthrough_columns -%}
    {%- if (column | lower) in known -%}
      {%- do exceptions.raise_compiler_error("basemodel: passthrough column '" ~ column ~ "' clashes with a column the package creates; rename it in a view over the source.") -%}
    {%- endif -%}
  {%- endfor -%}

  {#- Unambiguous text encoding of a nullable text value for the event hash:
      length-prefixed, so ('ab', 'c') and ('a', 'bc') differ. -#}
  {%- set encode = "coalesce(cast(length({0}) as " ~ string ~ ") || ':' || {0}, '-')" -%}
  {%- set identity = ['entity_id', 'cast(event_at as ' ~ string ~ ')', 'event_type'] -%}
  {%- for item in s.item_columns -%}{%- do identity.append(item.name) -%}{%- endfor -%}
  {%- if s.group_column -%}{%- do identity.append('group_id') -%}{%- endif -%}
  {%- if s.amount_column -%}{%- do identity.append('cast(amount as ' ~ string ~ ')') -%}{%- endif -%}
  {%- set identity_parts = [] -%}
  {%- for field in identity -%}{%- do identity_parts.append(encode.replace('{0}', field)) -%}{%- endfor -%}

  {%- set order_keys = [] -%}
  {%- if s.loaded_at_column -%}{%- do order_keys.append('loaded_at') -%}{%- endif -%}
  {%- if s.dedup_order_by -%}{%- do order_keys.append(s.dedup_order_by) -%}{%- endif -%}
  {%- do order_keys.append('event_id') -%}

with basemodel_source as (
    select * from {{ source('basemodel', 'events') }}
),

basemodel_typed as (
    select
        cast({{ s.entity_column }} as {{ string }}) as raw_entity,
        nullif(trim(cast({{ s.entity_column }} as {{ string }})), '') as entity_id,
        cast({{ s.timestamp_column }} as {{ string }}) as raw_timestamp,
        {{ basemodel.try_cast_timestamp(s.timestamp_column) }} as event_at,
        {%- if s.event_type_column %}
        cast({{ s.event_type_column }} as {{ string }}) as raw_event_type,
        nullif(trim(cast({{ s.event_type_column }} as {{ string }})), '') as event_type,
        {%- else %}
        cast(null as {{ string }}) as raw_event_type,
        cast('{{ dbt.escape_single_quotes(s.default_event_type) }}' as {{ string }}) as event_type,
        {%- endif %}
        {%- for item in s.item_columns %}
        nullif(trim(cast({{ item.column }} as {{ string }})), '') as {{ item.name }},
        {%- endfor %}
        {%- if s.group_column %}
        nullif(trim(cast({{ s.group_column }} as {{ string }})), '') as group_id,
        {%- else %}
        nullif(trim(cast({{ s.entity_column }} as {{ string }})), '') as group_id,
        {%- endif %}
        {%- if s.amount_column %}
        cast({{ s.amount_column }} as {{ string }}) as raw_amount,
        {{ basemodel.try_cast_number(s.amount_column) }} as amount,
        {%- else %}
        cast(null as {{ string }}) as raw_amount,
        cast(null as {{ basemodel.type_double() }}) as amount,
        {%- endif %}
        {%- if s.loaded_at_column %}
        cast({{ s.loaded_at_column }} as {{ timestamp }}) as loaded_at,
        {%- else %}
        cast(null as {{ timestamp }}) as loaded_at,
        {%- endif %}
        {%- if s.event_id_column %}
        nullif(trim(cast({{ s.event_id_column }} as {{ string }})), '') as source_event_id
        {%- else %}
        cast(null as {{ string }}) as source_event_id
        {%- endif %}
        {%- for column in s.passthrough_columns %},
        {{ column }}
        {%- endfor %}
    from basemodel_source
),

basemodel_checked as (
    select
        *,
        {%- if s.event_id_column %}
        source_event_id as event_id,
        {%- else %}
        {{ dbt.hash(dbt.concat(identity_parts)) }} as event_id,
        {%- endif %}
        case
            when entity_id is null then 'null_entity'
            {%- if s.event_id_column %}
            when source_event_id is null then 'null_event_id'
            {%- endif %}
            when nullif(trim(raw_timestamp), '') is null then 'null_timestamp'
            when event_at is null then 'unparseable_timestamp'
            {%- if s.valid_from %}
            when event_at < cast('{{ s.valid_from }}' as {{ timestamp }}) then 'timestamp_before_valid_range'
            {%- endif %}
            {%- if s.valid_to %}
            when event_at >= cast('{{ s.valid_to }}' as {{ timestamp }}) then 'timestamp_after_valid_range'
            {%- endif %}
            {%- if s.event_type_column %}
            when event_type is null then 'null_event_type'
            {%- endif %}
            {%- if s.amount_column %}
            when nullif(trim(raw_amount), '') is not null and amount is null then 'unparseable_amount'
            {%- endif %}
        end as invalid_reason
    from basemodel_typed
    {%- if where %}
    where {{ where }}
    {%- endif %}
),

basemodel_ranked as (
    select
        *,
        {#- NULL reasons form one partition: duplicates are counted among the
            valid rows only, so a malformed copy never displaces a good one. -#}
        row_number() over (
            partition by invalid_reason, event_id
            order by {{ order_keys | join(', ') }}
        ) as occurrence
    from basemodel_checked
)

select
    *,
    coalesce(invalid_reason, case when occurrence > 1 then 'duplicate' end) as rejection_reason
from basemodel_ranked
{% endmacro %}
