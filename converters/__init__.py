"""tritonab.converters"""
