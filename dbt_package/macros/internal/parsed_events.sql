{#-
  Every row of the source events relation exactly once: typed, given a
  source_row_id and an event_id, and with `rejection_reason` NULL for the
  events to keep or the first reason that applies otherwise:

    null_entity, null_event_id, null_timestamp, infinite_timestamp,
    unparseable_timestamp, timestamp_before_valid_range,
    timestamp_after_valid_range, null_event_type, unparseable_amount,
    duplicate

  source_row_id names the row: an md5 hash of every source value the package
  reads (as text, NULL kept apart from ''), followed by the row's rank among
  rows with exactly the same values. Rows with the same values are
  indistinguishable in every output, so which of them takes which rank does
  not matter; the id and the outputs are the same in every build.

  Among the valid copies of one event the first in the order (loaded_at, NULL
  last; basemodel_dedup_order_by; source_row_id) is kept and the others are
  duplicates. The order is total, so basemodel_stg_events and
  basemodel_rejected_events, which both read this macro, always split the
  rows the same way.

  `relation` defaults to the configured events relation (events_relation:
  your model, your source or the package's source). The time is read in
  basemodel_time_format (parse_event_time); with the `sql` format the raw
  timestamp is the value of basemodel_time_expression. `where` (a condition on the
  typed columns, e.g. event_at) limits the rows read for incremental runs;
  duplicates are then found within them. Identical rows share loaded_at and
  event_at, so they are always read together.
-#}
{% macro parsed_events(where=none, relation=none) %}
  {%- set s = basemodel.settings() -%}
  {%- set relation = relation if relation is not none else basemodel.events_relation() -%}
  {%- set string = dbt.type_string() -%}
  {%- set timestamp = dbt.type_timestamp() -%}
  {%- set known = ['event_id', 'entity_id', 'event_at', 'event_type', 'group_id', 'amount', 'loaded_at',
                   'rejection_reason', 'raw_entity', 'raw_timestamp', 'raw_event_type', 'raw_amount',
                   'source_row_id', 'source_row_hash', 'invalid_reason', 'occurrence', 'source_event_id']
                  + (s.item_columns | map(attribute='name') | list) -%}
  {%- for column in s.passthrough_columns -%}
    {%- if (column | lower) in known -%}
      {%- do exceptions.raise_compiler_error("basemodel: passthrough column '" ~ column ~ "' clashes with a column the package creates; rename it in a view over the source.") -%}
    {%- endif -%}
  {%- endfor -%}

  {#- Typed source columns are read as such; text columns are parsed. -#}
  {%- set types = basemodel.source_column_types(relation) -%}
  {%- set time_source = ('(' ~ s.time_expression ~ ')') if s.time_format == 'sql' else s.timestamp_column -%}
  {%- set timestamp_type = none if s.time_format == 'sql' else types.get(s.timestamp_column | replace('"', '') | lower) -%}
  {%- set amount_type = types.get((s.amount_column or '') | replace('"', '') | lower) -%}

  {#- Unambiguous text encoding of a nullable text value for a hash:
      length-prefixed, so ('ab', 'c') and ('a', 'bc') differ. -#}
  {%- set encode = "coalesce(cast(length({0}) as " ~ string ~ ") || ':' || {0}, '-')" -%}

  {#- The event: its content after trimming and parsing. -#}
  {%- set identity = ['entity_id', 'cast(event_at as ' ~ string ~ ')', 'event_type'] -%}
  {%- for item in s.item_columns -%}{%- do identity.append(item.name) -%}{%- endfor -%}
  {%- if s.group_column -%}{%- do identity.append('group_id') -%}{%- endif -%}
  {%- if s.amount_column -%}{%- do identity.append('cast(amount as ' ~ string ~ ')') -%}{%- endif -%}
  {%- set identity_parts = [] -%}
  {%- for field in identity -%}{%- do identity_parts.append(encode.replace('{0}', field)) -%}{%- endfor -%}

  {#- The source row: every value read, as found. -#}
  {%- set raw = ['raw_entity', 'raw_timestamp', 'raw_event_type', 'raw_amount', 'cast(loaded_at as ' ~ string ~ ')', 'source_event_id'] -%}
  {%- for item in s.item_columns -%}{%- do raw.append('raw_item_' ~ loop.index) -%}{%- endfor -%}
  {%- if s.group_column -%}{%- do raw.append('raw_group') -%}{%- endif -%}
  {%- for column in s.passthrough_columns -%}{%- do raw.append('cast(' ~ column ~ ' as ' ~ string ~ ')') -%}{%- endfor -%}
  {%- set raw_parts = [] -%}
  {%- for field in raw -%}{%- do raw_parts.append(encode.replace('{0}', field)) -%}{%- endfor -%}

  {#- NULL loaded_at last, spelled out: adapters differ in their default. -#}
  {%- set order_keys = [] -%}
  {%- if s.loaded_at_column -%}
    {%- do order_keys.append('case when loaded_at is null then 1 else 0 end') -%}
    {%- do order_keys.append('loaded_at') -%}
  {%- endif -%}
  {%- if s.dedup_order_by -%}{%- do order_keys.append(s.dedup_order_by) -%}{%- endif -%}

with basemodel_source as (
    select * from {{ relation }}
),

basemodel_typed as (
    select
        cast({{ s.entity_column }} as {{ string }}) as raw_entity,
        {{ basemodel.blank_to_null(s.entity_column) }} as entity_id,
        cast({{ time_source }} as {{ string }}) as raw_timestamp,
        {{ basemodel.parse_event_time(time_source, s.time_format, s.time_pattern, timestamp_type) }} as event_at,
        {%- if s.event_type_column %}
        cast({{ s.event_type_column }} as {{ string }}) as raw_event_type,
        {{ basemodel.blank_to_null(s.event_type_column) }} as event_type,
        {%- else %}
        cast(null as {{ string }}) as raw_event_type,
        cast('{{ dbt.escape_single_quotes(s.default_event_type) }}' as {{ string }}) as event_type,
        {%- endif %}
        {%- for item in s.item_columns %}
        cast({{ item.column }} as {{ string }}) as raw_item_{{ loop.index }},
        {{ basemodel.blank_to_null(item.column) }} as {{ item.name }},
        {%- endfor %}
        {%- if s.group_column %}
        cast({{ s.group_column }} as {{ string }}) as raw_group,
        {{ basemodel.blank_to_null(s.group_column) }} as group_id,
        {%- else %}
        {{ basemodel.blank_to_null(s.entity_column) }} as group_id,
        {%- endif %}
        {%- if s.amount_column %}
        cast({{ s.amount_column }} as {{ string }}) as raw_amount,
        {{ basemodel.try_cast_number(s.amount_column, amount_type) }} as amount,
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
        {{ basemodel.blank_to_null(s.event_id_column) }} as source_event_id
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
        {{ dbt.hash(dbt.concat(raw_parts)) }} as source_row_hash,
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
            when {{ basemodel.blank_to_null('raw_timestamp') }} is null then 'null_timestamp'
            when lower({{ basemodel.trim_blanks('raw_timestamp') }})
                in ('infinity', '+infinity', '-infinity', 'inf', '+inf', '-inf') then 'infinite_timestamp'
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
            when {{ basemodel.blank_to_null('raw_amount') }} is not null and amount is null then 'unparseable_amount'
            {%- endif %}
        end as invalid_reason
    from basemodel_typed
    {%- if where %}
    where {{ where }}
    {%- endif %}
),

basemodel_identified as (
    select
        *,
        source_row_hash || '.' || cast(row_number() over (
            partition by source_row_hash
            order by {{ (order_keys + ['source_row_hash']) | join(', ') }}
        ) as {{ string }}) as source_row_id
    from basemodel_checked
),

basemodel_ranked as (
    select
        *,
        {#- NULL reasons form one partition: duplicates are counted among the
            valid rows only, so a malformed copy never displaces a good one. -#}
        row_number() over (
            partition by invalid_reason, event_id
            order by {{ (order_keys + ['source_row_id']) | join(', ') }}
        ) as occurrence
    from basemodel_identified
)

select
    *,
    coalesce(invalid_reason, case when occurrence > 1 then 'duplicate' end) as rejection_reason
from basemodel_ranked
{% endmacro %}
