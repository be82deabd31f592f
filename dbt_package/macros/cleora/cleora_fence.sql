{#- Ends a subquery that the planner must not merge into the query around
    it. PostgreSQL pulls simple subqueries up and substitutes their
    expressions into the outer ones: the hash steps use each column several
    times, so merged they would grow exponentially (planning one query took
    16 GB before this fence); `offset 0` keeps every step a subquery. -#}
{% macro cleora_fence() -%}
  {{- return(adapter.dispatch('cleora_fence', 'basemodel')()) -}}
{%- endmacro %}

{% macro default__cleora_fence() -%}
{%- endmacro %}

{% macro postgres__cleora_fence() -%}
  offset 0
{%- endmacro %}
