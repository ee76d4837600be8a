"""tritonab.splitter.stats"""
