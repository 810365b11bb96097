"""What every Dataset row carries besides its fields."""

#: The key under which every Dataset row carries its stable source id.
ROW_ID_FIELD = "_row_id"
