{#-
  The incidence of a hypergraph for cleora_propagate: one row per distinct
  (hyperedge, entity) with columns edge_id (a number per hyperedge),
  entity_key and edge_weight = 1/|e|^2, |e| the number of distinct entities
  of the hyperedge (a row is a set, as in CleoraEmbedder).

  relation:      the hyperedges
  edge_columns:  the columns that identify a hyperedge, e.g. ['entity_id', 'group_id']
  item_column:   its entities: a list column (one row per hyperedge, as in
                 basemodel_hyperedges) or, with is_list=false, one entity per
                 row (e.g. events with a basket column)
  NULL entities are ignored; hyperedges without entities have no rows.
-#}
{% macro cleora_incidence(relation, edge_columns, item_column, is_list=true) -%}
{%- set edge_columns = [edge_columns] if edge_columns is string else edge_columns -%}
{%- set edge_key = edge_columns | join(', ') -%}
select
    {#- Numbered in the order of their keys: the same numbers on every read. #}
    dense_rank() over (order by {{ edge_key }}) as edge_id,
    entity_key,
    cast(1 as {{ basemodel.type_double() }}) / (n_members * n_members) as edge_weight
from (
    select
        *,
        count(*) over (partition by {{ edge_key }}) as n_members
    from (
        select distinct {{ edge_key }}, entity_key
        from (
            select
                {{ edge_key }},
                {{ basemodel.cleora_unnest(item_column) if is_list else item_column }} as entity_key
            from {{ relation }} as cleora_hyperedges
        ) as cleora_members
        where entity_key is not null
    ) as cleora_distinct_members
) as cleora_sized_members
{%- endmacro %}

{#- One row per element of a list column (in a select list). -#}
{% macro cleora_unnest(list_column) -%}
  {{- return(adapter.dispatch('cleora_unnest', 'basemodel')(list_column)) -}}
{%- endmacro %}

{% macro default__cleora_unnest(list_column) -%}
  unnest({{ list_column }})
{%- endmacro %}

{% macro spark__cleora_unnest(list_column) -%}
  explode({{ list_column }})
{%- endmacro %}
