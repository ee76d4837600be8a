"""tritonab.deploy"""
