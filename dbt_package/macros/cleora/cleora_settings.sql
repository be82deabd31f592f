{#-
  The vars of the in-warehouse Cleora models, read, defaulted and validated
  in one place (the package's other vars are in basemodel.settings()):

    basemodel_cleora_enabled        build the models (default false)
    basemodel_cleora_item_column    the item column whose hyperedge lists are
                                    embedded (default: the first item column)
    basemodel_cleora_n_components   vector length (default 128)
    basemodel_cleora_n_iter         propagation steps (default 3)
    basemodel_cleora_seed           random_state of the start vectors (default 0)
    basemodel_cleora_start_vectors_identifier (and _schema, _database):
                                    optional table (entity_key, cleora_0 ..)
                                    of start vectors for some entities, as
                                    CleoraEmbedder's initial_vectors
-#}
{% macro cleora_settings() %}
  {%- set fail = exceptions.raise_compiler_error -%}
  {%- set s = basemodel.settings() -%}
  {%- set names = s.item_columns | map(attribute='name') | list -%}
  {%- set item = var('basemodel_cleora_item_column', names[0]) | lower -%}
  {%- if item not in names -%}
    {%- do fail("basemodel: `basemodel_cleora_item_column` '" ~ item ~ "' is not one of the item columns " ~ names) -%}
  {%- endif -%}
  {%- set settings = {'item_column': item} -%}
  {%- for name, default, lowest in [['n_components', 128, 1], ['n_iter', 3, 0]] -%}
    {%- set value = var('basemodel_cleora_' ~ name, default) -%}
    {%- if value is not number or value != value | int or value < lowest -%}
      {%- do fail("basemodel: `basemodel_cleora_" ~ name ~ "` must be a whole number >= " ~ lowest ~ "; got " ~ value) -%}
    {%- endif -%}
    {%- do settings.update({name: value | int}) -%}
  {%- endfor -%}
  {%- set seed = var('basemodel_cleora_seed', 0) -%}
  {%- if seed is not number or seed != seed | int -%}
    {%- do fail("basemodel: `basemodel_cleora_seed` must be a whole number (CleoraEmbedder's random_state); got " ~ seed) -%}
  {%- endif -%}
  {%- do settings.update({'seed': seed | int}) -%}
  {%- set start_identifier = var('basemodel_cleora_start_vectors_identifier', none) -%}
  {%- if start_identifier is not none -%}
    {%- do settings.update({'start_vectors': api.Relation.create(
        database=var('basemodel_cleora_start_vectors_database', target.get('database')),
        schema=var('basemodel_cleora_start_vectors_schema', target.schema),
        identifier=start_identifier)}) -%}
  {%- else -%}
    {%- do settings.update({'start_vectors': none}) -%}
  {%- endif -%}
  {%- do return(settings) -%}
{% endmacro %}
