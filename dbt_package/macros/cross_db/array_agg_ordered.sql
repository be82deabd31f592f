{#-
  Ordered list of the non-null values of `expression` in each group.

  `order_by` is one SQL expression or a list of them, all ascending (add a
  unique tie-breaker so the order is deterministic). Null values are left out
  on every adapter (Snowflake, BigQuery and Spark drop them natively; DuckDB
  and Postgres are told to), and a group without a non-null value gives an
  empty list, never NULL. To keep two lists aligned, aggregate
  `case when <key> is not null then <value> end` for the second one.
-#}
{% macro array_agg_ordered(expression, order_by) -%}
  {%- set keys = [order_by] if order_by is string else order_by -%}
  {{- return(adapter.dispatch('array_agg_ordered', 'basemodel')(expression, keys)) -}}
{%- endmacro %}

{% macro default__array_agg_ordered(expression, order_by) -%}
  {#- SQL:2008 ARRAY_AGG with ORDER BY and FILTER: PostgreSQL as written (its
      untyped '{}' literal takes the aggregate's array type). -#}
  coalesce(
    array_agg({{ expression }} order by {{ order_by | join(', ') }})
      filter (where {{ expression }} is not null),
    '{}'
  )
{%- endmacro %}

{% macro duckdb__array_agg_ordered(expression, order_by) -%}
  coalesce(
    list({{ expression }} order by {{ order_by | join(', ') }})
      filter (where {{ expression }} is not null),
    []
  )
{%- endmacro %}

{% macro snowflake__array_agg_ordered(expression, order_by) -%}
  {#- ARRAY_AGG omits NULL values and returns [] for an all-NULL group. -#}
  array_agg({{ expression }}) within group (order by {{ order_by | join(', ') }})
{%- endmacro %}

{% macro bigquery__array_agg_ordered(expression, order_by) -%}
  {#- BigQuery cannot store NULL array elements; a NULL array reads as []. -#}
  array_agg({{ expression }} ignore nulls order by {{ order_by | join(', ') }})
{%- endmacro %}

{% macro spark__array_agg_ordered(expression, order_by) -%}
  {#- collect_list has no ORDER BY: collect (keys..., value) structs, sort them
      (structs compare field by field) and keep the value. A NULL struct is
      skipped by collect_list, which drops the NULL values. -#}
  transform(
    array_sort(collect_list(
      case when {{ expression }} is not null then named_struct(
        {%- for key in order_by %}
        'k{{ loop.index }}', {{ key }},
        {%- endfor %}
        'v', {{ expression }}
      ) end
    )),
    x -> x.v
  )
{%- endmacro %}
