{#-
  `n_iter` Cleora steps X <- normalise(H diag(w) H^T X) in SQL, with the
  vectors wide (one double column per dimension): two joins and two
  aggregations per step over the incidence, never the clique.

  incidence:    relation with edge_id, entity_key and edge_weight (1/|e|^2),
                one row per member of each hyperedge (cleora_incidence)
  start:        relation or subquery with entity_key and cleora_0 ..
                cleora_<n_components - 1> (cleora_start_vectors)

  W = H diag(1/|e|^2) H^T is CleoraEmbedder's clique expansion with
  self-loops; its "left" propagation multiplies by D^-1 W, and the row
  scaling D^-1 is removed by the normalisation, so W alone is applied here,
  as in sklearn_basemodel.embed.cleora.engine.propagate.
-#}
{% macro cleora_propagate(incidence, start, n_components, n_iter) -%}
{#- a namespace: a plain `set` inside a for loop does not outlive the loop -#}
{%- set state = namespace(vectors='select * from ' ~ start ~ ' as cleora_start') -%}
{%- for step in range(n_iter) -%}
  {%- set summed -%}
select
    members.entity_key,
    {%- for i in range(n_components) %}
    sum(edges.cleora_{{ i }}) as cleora_{{ i }}{{ ',' if not loop.last }}
    {%- endfor %}
from {{ incidence }} as members
inner join (
    {#- Each hyperedge's weighted sum of its members' vectors. The weight is
        the same on every row of a hyperedge: max() picks it, and grouping by
        edge_id alone is twice as fast on DuckDB as adding it to the key. -#}
    select
        incidence.edge_id,
        {%- for i in range(n_components) %}
        max(incidence.edge_weight) * sum(vectors.cleora_{{ i }}) as cleora_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ incidence }} as incidence
    inner join ({{ state.vectors }}) as vectors
        on incidence.entity_key = vectors.entity_key
    group by incidence.edge_id
) as edges
    on members.edge_id = edges.edge_id
group by members.entity_key
  {%- endset -%}
  {%- set state.vectors = basemodel.cleora_normalize(summed, 'entity_key', n_components) -%}
{%- endfor -%}
{{ state.vectors }}
{%- endmacro %}
